using System.Net;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.FileProviders;
using StackExchange.Redis;
using WebAPI;

// The chat server as an ASP.NET Core SignalR app, for a fleet that mixes it with fastify-signalr servers behind one
// load balancer, on one Redis. Configured like the fastify-signalr chat sample, from the environment:
//   PORT                  port to listen on (default 5000), on HOST (default 0.0.0.0, every interface)
//   REDIS_URL             redis://[user:password@]host:port of the backplane; without it, no backplane
//   REDIS_CHANNEL_PREFIX  the backplane's channel prefix (default none), the same on every server of the fleet
//   CHAT_PAGE_DIR         folder of the chat page (index.html) served at / (default: wwwroot beside the program)
//   SIGNALR_CLIENT_JS     the browser client file served at /lib/signalr.min.js (default: wwwroot/lib/…)
var port = int.Parse(Environment.GetEnvironmentVariable("PORT") is { Length: > 0 } p ? p : "5000");
var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } h ? IPAddress.Parse(h) : IPAddress.Any;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("WebAPI", LogLevel.Information);
builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
builder.WebHost.ConfigureKestrel(o => o.Listen(host, port));
// What SIGTERM leaves the server to finish: within `docker stop`'s 10 s.
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
builder.Services.AddSingleton<IUserIdProvider, QueryUserIdProvider>();
builder.Services.AddHealthChecks();

var signalR = builder.Services.AddSignalR().AddMessagePackProtocol();
if (Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } redisUrl)
{
    var configuration = RedisConfiguration(redisUrl);
    var prefix = Environment.GetEnvironmentVariable("REDIS_CHANNEL_PREFIX") ?? "";
    signalR.AddStackExchangeRedis(configuration, o => o.Configuration.ChannelPrefix = RedisChannel.Literal(prefix));
}

var app = builder.Build();

var pageDir = Environment.GetEnvironmentVariable("CHAT_PAGE_DIR") is { Length: > 0 } dir
    ? Path.GetFullPath(dir)
    : Path.Combine(AppContext.BaseDirectory, "wwwroot");
if (Directory.Exists(pageDir))
{
    var files = new PhysicalFileProvider(pageDir);
    app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
    app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
}
if (Environment.GetEnvironmentVariable("SIGNALR_CLIENT_JS") is { Length: > 0 } clientJs)
{
    app.MapGet("/lib/signalr.min.js", () => Results.File(Path.GetFullPath(clientJs), "application/javascript; charset=utf-8"));
}

// From SIGTERM on, new connections are refused with 503, as a fastify-signalr server refuses them while it drains:
// the balancers retry such a negotiation on another server at once. Without it the stopping server would still
// accept negotiations for connections it closes a moment later, and clients reconnecting through the balancer
// would fail their first attempt.
var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
app.Use(async (context, next) =>
{
    if (lifetime.ApplicationStopping.IsCancellationRequested && context.Request.Path.Value?.EndsWith("/negotiate", StringComparison.OrdinalIgnoreCase) == true)
    {
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        return;
    }
    await next(context);
});

app.MapHub<ChatHub>("/chathub");
app.MapHealthChecks("/health");

// A client result requested from outside any hub method, as the fastify-signalr chat sample's GET /ask/{id}.
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

app.Run();

/// <summary>A StackExchange.Redis configuration from a redis:// URL, as the fastify-signalr servers read REDIS_URL.</summary>
static string RedisConfiguration(string url)
{
    var uri = new Uri(url);
    var configuration = $"{uri.Host}:{(uri.Port > 0 ? uri.Port : 6379)},abortConnect=false";
    if (uri.UserInfo is { Length: > 0 } userInfo)
    {
        var parts = userInfo.Split(':', 2);
        configuration += parts.Length == 2
            ? $",user={Uri.UnescapeDataString(parts[0])},password={Uri.UnescapeDataString(parts[1])}"
            : $",password={Uri.UnescapeDataString(parts[0])}";
    }
    if (uri.Scheme == "rediss") configuration += ",ssl=true";
    return configuration;
}
