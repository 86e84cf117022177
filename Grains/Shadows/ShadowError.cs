namespace OrleansIot.Grains.Shadows;

/// <summary>An AWS shadow error: the code and message of AWS's error table (AWS IoT Developer Guide, "Device Shadow error messages").</summary>
internal sealed record ShadowError(int Code, string Message)
{
    public static readonly ShadowError InvalidJson = new(400, "Invalid JSON");
    public static readonly ShadowError MissingState = new(400, "Missing required node: state");
    public static readonly ShadowError StateNotObject = new(400, "State node must be an object");
    public static readonly ShadowError DesiredNotObject = new(400, "Desired node must be an object");
    public static readonly ShadowError ReportedNotObject = new(400, "Reported node must be an object");
    public static readonly ShadowError InvalidVersion = new(400, "Invalid version");
    public static readonly ShadowError InvalidClientToken = new(400, "Invalid clientToken");
    public static readonly ShadowError TooDeep = new(400, $"JSON contains too many levels of nesting; maximum is {ShadowMerge.MaxDepth}");
    public static readonly ShadowError InvalidStateNode = new(400, "State contains an invalid node");
    public static readonly ShadowError NullInArray = new(400, "Invalid JSON: arrays may not contain null");
    public static readonly ShadowError VersionConflict = new(409, "Version conflict");
    public static readonly ShadowError TooLarge = new(413, "The payload exceeds the maximum size allowed");
    public static readonly ShadowError NotUtf8 = new(415, "Unsupported documented encoding; supported encoding is UTF-8");
    public static readonly ShadowError TooManyRequests = new(429, "Too Many Requests");
    public static readonly ShadowError Internal = new(500, "Internal service failure");

    public static ShadowError NoShadow(string shadowName) => new(404, $"No shadow exists with name: '{shadowName}'");
}
