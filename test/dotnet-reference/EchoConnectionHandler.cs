using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Connections.Features;

namespace WebAPI;

/// <summary>
/// A raw connection endpoint (no hub protocol), mapped at /echo: every chunk the client sends comes back as it came;
/// a chunk that is exactly "bye" ends the connection from the server. With <c>?binary=true</c> on the connection's
/// requests, frames to a WebSocket client are Binary instead of Text.
/// </summary>
public sealed class EchoConnectionHandler : ConnectionHandler
{
    private static readonly byte[] Bye = Encoding.UTF8.GetBytes("bye");

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var http = connection.Features.Get<IHttpContextFeature>()?.HttpContext;
        if (http?.Request.Query["binary"].ToString() == "true" && connection.Features.Get<ITransferFormatFeature>() is { } format)
        {
            format.ActiveFormat = TransferFormat.Binary;
        }
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            try
            {
                if (buffer.Length == Bye.Length && buffer.ToArray().AsSpan().SequenceEqual(Bye)) return;
                foreach (var segment in buffer) await output.WriteAsync(segment);
                if (result.IsCompleted || result.IsCanceled) return;
            }
            finally
            {
                input.AdvanceTo(buffer.End);
            }
        }
    }
}
