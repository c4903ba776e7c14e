using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using StackExchange.Redis;
using WebAPI;

// The ASP.NET Core SignalR reference server. Configuration comes only from environment variables
// (see README.md); an unset or empty variable keeps .NET's default. A bad setting or a failed start ends the
// process with exit code 2 and one line on stderr (rather than an unhandled-exception abort).
try
{
    await RunAsync(args);
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"reference server failed: {e.GetType().Name}: {e.Message}");
    return 2;
}

static async Task RunAsync(string[] args)
{
    var port = Settings.Int("PORT") ?? 5000;
    var transports = Settings.Transports("TRANSPORTS");
    var corsOrigins = Settings.List("CORS_ORIGINS");

    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    builder.Logging.ClearProviders();
    builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, port));
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));

    builder.Services.AddSingleton<IUserIdProvider, QueryUserIdProvider>();

    // Read every setting before the host starts, so a bad value fails the start instead of the first connection.
    var keepAlive = Settings.Millis("KEEP_ALIVE_MS");
    var clientTimeout = Settings.Millis("CLIENT_TIMEOUT_MS");
    var handshakeTimeout = Settings.Millis("HANDSHAKE_TIMEOUT_MS");
    var maxMessageSize = Settings.Long("MAX_MESSAGE_SIZE");
    var detailedErrors = Settings.Bool("DETAILED_ERRORS");
    var parallelInvocations = Settings.Int("MAX_PARALLEL_INVOCATIONS");
    var streamBufferCapacity = Settings.Int("STREAM_BUFFER_CAPACITY");
    var pollTimeout = Settings.Millis("LONG_POLL_TIMEOUT_MS");
    var statefulReconnects = Settings.Bool("ALLOW_STATEFUL_RECONNECTS");
    var disconnectTimeout = Settings.Millis("DISCONNECT_TIMEOUT_MS");
    var messagePack = Settings.Bool("MESSAGEPACK");
    var redis = Settings.Raw("REDIS");
    var redisChannelPrefix = Settings.Raw("REDIS_CHANNEL_PREFIX");
    if (redisChannelPrefix is not null && redis is null) throw new FormatException("REDIS_CHANNEL_PREFIX needs REDIS");

    var signalR = builder.Services.AddSignalR(o =>
    {
        if (keepAlive is { } k) o.KeepAliveInterval = k;
        if (clientTimeout is { } c) o.ClientTimeoutInterval = c;
        if (handshakeTimeout is { } h) o.HandshakeTimeout = h;
        if (maxMessageSize is { } m and > 0) o.MaximumReceiveMessageSize = m;
        if (detailedErrors is { } d) o.EnableDetailedErrors = d;
        if (parallelInvocations is { } p) o.MaximumParallelInvocationsPerClient = p;
        if (streamBufferCapacity is { } s) o.StreamBufferCapacity = s;
    });
    // JSON alone unless asked: the single-server conformance tables compare JSON-only servers.
    if (messagePack == true) signalR.AddMessagePackProtocol();
    if (redis is not null)
    {
        // The StackExchange.Redis configuration string, e.g. "127.0.0.1:6379,abortConnect=false".
        signalR.AddStackExchangeRedis(redis, o =>
        {
            if (redisChannelPrefix is not null) o.Configuration.ChannelPrefix = RedisChannel.Literal(redisChannelPrefix);
        });
    }
    builder.Services.AddConnections(o =>
    {
        if (disconnectTimeout is { } d) o.DisconnectTimeout = d;
    });

    if (corsOrigins is not null)
    {
        builder.Services.AddCors(o => o.AddDefaultPolicy(policy =>
        {
            if (corsOrigins.Contains("*")) policy.SetIsOriginAllowed(_ => true);
            else policy.WithOrigins(corsOrigins);
            policy.AllowAnyHeader().AllowAnyMethod().AllowCredentials();
        }));
    }

    var app = builder.Build();

    if (corsOrigins is not null) app.UseCors();

    app.MapHub<ChatHub>("/chathub", o =>
    {
        if (transports is { } t) o.Transports = t;
        if (pollTimeout is { } p) o.LongPolling.PollTimeout = p;
        if (statefulReconnects is { } s) o.AllowStatefulReconnects = s;
    });

    app.MapConnectionHandler<EchoConnectionHandler>("/echo");

    // A client result requested from outside any hub method.
    app.MapGet("/ask/{connectionId}", async (string connectionId, IHubContext<ChatHub> hub, CancellationToken cancellationToken) =>
    {
        try
        {
            var answer = await hub.Clients.Client(connectionId).InvokeAsync<string>("GetAnswer", "question", cancellationToken);
            return Results.Text(answer ?? "");
        }
        catch (Exception e)
        {
            return Results.Text($"error: {e.Message}");
        }
    });

    // Started by the test harness with stdin as a lifeline: stop when it closes, so a killed test run never leaves
    // a server behind.
    if (Settings.Bool("EXIT_ON_STDIN_EOF") == true)
    {
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = Task.Run(async () =>
        {
            await using var stdin = Console.OpenStandardInput();
            var buffer = new byte[256];
            while (await stdin.ReadAsync(buffer) > 0)
            {
            }
            lifetime.StopApplication();
        });
    }

    await app.StartAsync();
    // The harness waits for this line.
    Console.WriteLine($"Reference server listening on http://127.0.0.1:{port}");
    await app.WaitForShutdownAsync();
}

/// <summary>Reads the environment; empty values count as unset; a malformed value names its variable.</summary>
internal static class Settings
{
    public static string? Raw(string name) =>
        Environment.GetEnvironmentVariable(name) is { } v && v.Trim() is { Length: > 0 } t ? t : null;

    private static T? Parse<T>(string name, Func<string, T> parse) where T : struct
    {
        if (Raw(name) is not { } value) return null;
        try
        {
            return parse(value);
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new FormatException($"{name}='{value}' is not valid: {e.Message}", e);
        }
    }

    public static int? Int(string name) => Parse(name, v => int.Parse(v, CultureInfo.InvariantCulture));

    public static long? Long(string name) => Parse(name, v => long.Parse(v, CultureInfo.InvariantCulture));

    public static TimeSpan? Millis(string name) =>
        Parse(name, v => TimeSpan.FromMilliseconds(double.Parse(v, CultureInfo.InvariantCulture)));

    public static bool? Bool(string name) => Parse(name, bool.Parse);

    public static string[]? List(string name) =>
        Raw(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A comma list of WebSockets, ServerSentEvents, LongPolling (any case).</summary>
    public static HttpTransportType? Transports(string name) => Parse(name, v =>
    {
        var result = HttpTransportType.None;
        foreach (var item in v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            result |= item.ToLowerInvariant() switch
            {
                "websockets" => HttpTransportType.WebSockets,
                "serversentevents" => HttpTransportType.ServerSentEvents,
                "longpolling" => HttpTransportType.LongPolling,
                _ => throw new FormatException($"unknown transport '{item}'"),
            };
        }
        return result;
    });
}
