using OrleansIot.Silo.Hosting;

return args is ["probe", .. var probe] ? await HealthProbe.RunAsync(probe) : await IotSiloHost.RunAsync(args);
