using System.Net;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using WebAPI;

// The ASP.NET Core SignalR reference server. Configuration comes only from environment variables
// (see README.md); an unset variable keeps .NET's default.

var port = Settings.Int("PORT") ?? 5000;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, port));
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));

builder.Services.AddSingleton<IUserIdProvider, QueryUserIdProvider>();
builder.Services
    .AddSignalR(o =>
    {
        if (Settings.Millis("KEEP_ALIVE_MS") is { } keepAlive) o.KeepAliveInterval = keepAlive;
        if (Settings.Millis("CLIENT_TIMEOUT_MS") is { } clientTimeout) o.ClientTimeoutInterval = clientTimeout;
        if (Settings.Millis("HANDSHAKE_TIMEOUT_MS") is { } handshake) o.HandshakeTimeout = handshake;
        if (Settings.Long("MAX_MESSAGE_SIZE") is { } max and > 0) o.MaximumReceiveMessageSize = max;
        if (Settings.Bool("DETAILED_ERRORS") is { } detailed) o.EnableDetailedErrors = detailed;
        if (Settings.Int("MAX_PARALLEL_INVOCATIONS") is { } parallel) o.MaximumParallelInvocationsPerClient = parallel;
        if (Settings.Int("STREAM_BUFFER_CAPACITY") is { } buffer) o.StreamBufferCapacity = buffer;
    });
builder.Services.AddConnections(o =>
{
    if (Settings.Millis("DISCONNECT_TIMEOUT_MS") is { } disconnect) o.DisconnectTimeout = disconnect;
});

var corsOrigins = Settings.List("CORS_ORIGINS");
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
    if (Settings.List("TRANSPORTS") is { } transports)
    {
        o.Transports = HttpTransportType.None;
        foreach (var t in transports) o.Transports |= Enum.Parse<HttpTransportType>(t, ignoreCase: true);
    }
    if (Settings.Millis("LONG_POLL_TIMEOUT_MS") is { } poll) o.LongPolling.PollTimeout = poll;
    if (Settings.Bool("ALLOW_STATEFUL_RECONNECTS") is { } stateful) o.AllowStatefulReconnects = stateful;
});

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

/// <summary>Reads the environment; empty values count as unset.</summary>
internal static class Settings
{
    private static string? Raw(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v.Trim() : null;

    public static int? Int(string name) => Raw(name) is { } v ? int.Parse(v) : null;

    public static long? Long(string name) => Raw(name) is { } v ? long.Parse(v) : null;

    public static TimeSpan? Millis(string name) => Raw(name) is { } v ? TimeSpan.FromMilliseconds(double.Parse(v)) : null;

    public static bool? Bool(string name) => Raw(name) is { } v ? bool.Parse(v) : null;

    public static string[]? List(string name) =>
        Raw(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
