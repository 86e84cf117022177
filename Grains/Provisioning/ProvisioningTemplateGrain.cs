using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Provisioning;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Provisioning;

/// <summary>One fleet provisioning template, persisted; its body is checked when stored.</summary>
[GrainType("provisioning-template")]
internal sealed class ProvisioningTemplateGrain(
    [PersistentState("provisioning-template", StorageNames.Default)] IPersistentState<ProvisioningTemplateState> state,
    TimeProvider time) : Grain, IProvisioningTemplateGrain
{
    private string Name => this.GetPrimaryKeyString();

    public async Task<ProvisioningTemplateInfo> Create(string templateBody, bool enabled, string? description, string? provisioningRoleArn)
    {
        if (!ProvisioningTemplate.IsValidName(Name))
        {
            throw ApiException.Invalid("templateName must be 1 to 36 characters of [0-9A-Za-z_-].");
        }

        if (state.State.Body is not null)
        {
            throw ApiException.AlreadyExists($"Provisioning template {Name} already exists.");
        }

        ProvisioningTemplate.Parse(templateBody);
        var now = time.GetUtcNow();
        state.State = new ProvisioningTemplateState
        {
            Body = templateBody,
            Enabled = enabled,
            Description = description,
            RoleArn = provisioningRoleArn,
            Created = now,
            Modified = now,
            Version = 1,
        };
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.ProvisioningTemplates).Add(Name);
        return Info();
    }

    public Task<ProvisioningTemplateInfo?> Describe() => Task.FromResult(state.State.Body is null ? null : Info());

    public async Task<ProvisioningTemplateInfo> Update(string? templateBody, bool? enabled, string? description)
    {
        Existing();
        if (templateBody is not null)
        {
            ProvisioningTemplate.Parse(templateBody);
            state.State.Body = templateBody;
            state.State.Version++;
        }

        state.State.Enabled = enabled ?? state.State.Enabled;
        state.State.Description = description ?? state.State.Description;
        state.State.Modified = time.GetUtcNow();
        await state.WriteStateAsync();
        return Info();
    }

    public async Task Delete()
    {
        Existing();
        await state.ClearStateAsync();
        state.State = new ProvisioningTemplateState();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.ProvisioningTemplates).Remove(Name);
    }

    private void Existing()
    {
        if (state.State.Body is null)
        {
            throw ApiException.NotFound($"Provisioning template {Name} cannot be found.");
        }
    }

    private ProvisioningTemplateInfo Info()
    {
        var s = state.State;
        return new ProvisioningTemplateInfo(Name, s.Body!, s.Enabled, s.Description, s.RoleArn, s.Created, s.Modified, s.Version);
    }
}

[GenerateSerializer, Alias("OrleansIot.ProvisioningTemplateState")]
public sealed class ProvisioningTemplateState
{
    [Id(0)] public string? Body { get; set; }
    [Id(1)] public bool Enabled { get; set; }
    [Id(2)] public string? Description { get; set; }
    [Id(3)] public string? RoleArn { get; set; }
    [Id(4)] public DateTimeOffset Created { get; set; }
    [Id(5)] public DateTimeOffset Modified { get; set; }
    [Id(6)] public int Version { get; set; }
}
