using OrleansIot.Silo.Hosting;

return await IotSiloHost.RunAsync(args);
