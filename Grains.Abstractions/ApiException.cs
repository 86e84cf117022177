namespace OrleansIot.Grains.Abstractions;

/// <summary>
/// A control-plane request AWS would refuse, with AWS's exception name (<see cref="Code"/>, e.g.
/// <c>ResourceAlreadyExistsException</c>) and the HTTP status it maps to. Thrown by the registry and rule grains, so
/// backend services see what an AWS SDK user sees; the HTTP API turns it into problem+json.
/// </summary>
[GenerateSerializer, Alias("OrleansIot.ApiException")]
public sealed class ApiException : Exception
{
    /// <summary>For serialization.</summary>
    public ApiException()
    {
    }

    /// <summary>An InvalidRequestException.</summary>
    public ApiException(string message)
        : base(message)
    {
    }

    /// <summary>An InvalidRequestException with its cause.</summary>
    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>An AWS exception with its HTTP status.</summary>
    public ApiException(int status, string code, string message)
        : base(message)
    {
        Status = status;
        Code = code;
    }

    /// <summary>HTTP status: 400, 404, 409, 410 …</summary>
    [Id(0)] public int Status { get; init; } = 400;

    /// <summary>AWS exception name.</summary>
    [Id(1)] public string Code { get; init; } = "InvalidRequestException";

    /// <summary>400 InvalidRequestException.</summary>
    public static ApiException Invalid(string message) => new(400, "InvalidRequestException", message);

    /// <summary>404 ResourceNotFoundException.</summary>
    public static ApiException NotFound(string message) => new(404, "ResourceNotFoundException", message);

    /// <summary>409 ResourceAlreadyExistsException.</summary>
    public static ApiException AlreadyExists(string message) => new(409, "ResourceAlreadyExistsException", message);

    /// <summary>409 VersionConflictException.</summary>
    public static ApiException VersionConflict(string message) => new(409, "VersionConflictException", message);

    /// <summary>410 LimitExceededException.</summary>
    public static ApiException LimitExceeded(string message) => new(410, "LimitExceededException", message);
}
