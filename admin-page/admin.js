/* The admin page: a client of the built-in admin hub (`./hub`) through the official browser client. */
(function () {
  'use strict';
  const $ = (selector) => document.querySelector(selector);
  const params = new URLSearchParams(location.search);
  const transport = signalR.HttpTransportType[params.get('transport') || ''];
  const connection = new signalR.HubConnectionBuilder()
    .withUrl('hub', transport === undefined ? {} : { transport })
    .withAutomaticReconnect()
    .build();

  let view = 'overview';
  let hub = '';
  let selectedConnection = '';
  let lastSnapshot = null;
  let tracing = false;
  let tracePaused = false;
  const TRACE_ROWS = 500;
  const HISTORY = 300;
  const series = [[], [], [], []];
  let chart = null;
  let chartHub = '';

  function text(value) {
    return value === undefined || value === null ? '' : String(value);
  }
  function cell(row, value, className) {
    const td = document.createElement('td');
    td.textContent = text(value);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }
  function fill(tbody, rows, build) {
    const body = document.querySelector(tbody);
    body.replaceChildren(
      ...rows.map((item) => {
        const tr = document.createElement('tr');
        build(tr, item);
        return tr;
      }),
    );
  }
  function bytes(value) {
    if (value >= 1 << 30) return (value / (1 << 30)).toFixed(1) + ' GiB';
    if (value >= 1 << 20) return (value / (1 << 20)).toFixed(1) + ' MiB';
    if (value >= 1 << 10) return (value / (1 << 10)).toFixed(1) + ' KiB';
    return value + ' B';
  }
  /** HH:MM:SS.mmm, local time. */
  function clock(ms) {
    const at = new Date(ms);
    const two = (value) => String(value).padStart(2, '0');
    return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${String(at.getMilliseconds()).padStart(3, '0')}`;
  }
  function time(ms) {
    return ms ? new Date(ms).toLocaleTimeString() : '';
  }
  function log(result, what) {
    const item = document.createElement('li');
    item.textContent = `${new Date().toLocaleTimeString()} ${what}: ${result.message}`;
    if (!result.ok) item.className = 'failed';
    $('#action-log').prepend(item);
  }

  /** Shows the confirmation box; resolves true when confirmed. */
  function confirmAction(question) {
    return new Promise((resolve) => {
      $('#confirm-text').textContent = question;
      $('#confirm').hidden = false;
      const done = (answer) => {
        $('#confirm').hidden = true;
        $('#confirm-yes').onclick = null;
        $('#confirm-no').onclick = null;
        resolve(answer);
      };
      $('#confirm-yes').onclick = () => done(true);
      $('#confirm-no').onclick = () => done(false);
    });
  }
  async function act(question, what, run) {
    if (!(await confirmAction(question))) return;
    try {
      log(await run(), what);
    } catch (error) {
      log({ ok: false, message: error.message }, what);
    }
    refreshView();
  }

  function showView(name) {
    view = name;
    for (const button of document.querySelectorAll('#views button'))
      button.classList.toggle('active', button.dataset.view === name);
    for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${name}`;
    refreshView();
  }
  for (const button of document.querySelectorAll('#views button'))
    button.addEventListener('click', () => showView(button.dataset.view));

  function currentHub(snapshot) {
    return snapshot.hubs.find((item) => item.path === hub) || snapshot.hubs[0];
  }

  function renderSnapshot(snapshot) {
    lastSnapshot = snapshot;
    const select = $('#hub-select');
    const paths = snapshot.hubs.map((item) => item.path);
    if ([...select.options].map((option) => option.value).join() !== paths.join()) {
      select.replaceChildren(...paths.map((path) => new Option(path, path)));
      if (!paths.includes(hub)) hub = paths[0] || '';
      select.value = hub;
    }
    const current = currentHub(snapshot);
    if (!current) return;
    $('#hub-connections').textContent = current.connections;
    $('#rate-in').textContent = current.messagesInPerSecond;
    $('#rate-out').textContent = current.messagesOutPerSecond;
    $('#memory').textContent = bytes(snapshot.process.rssBytes);
    const backplane = snapshot.backplane;
    $('#backplane').textContent = backplane ? backplane.state : 'none';
    $('#backplane-details').textContent = backplane
      ? `Redis ${backplane.redis}: ${backplane.state}, ${backplane.outages ?? 0} outages, ${backplane.queuedMessages ?? 0} publishes queued, ${backplane.droppedMessages ?? 0} dropped`
      : 'No backplane: this server alone.';
    $('#scope').textContent =
      current.scope === 'fleet' ? '(every server on the Redis, with presence)' : '(this server)';
    fill('#servers tbody', current.servers, (tr, server) => {
      tr.dataset.server = server.serverName;
      cell(tr, server.serverName + (server.self ? ' (this one)' : ''));
      cell(tr, server.connections);
      // Servers without the admin page registered write no summary.
      const summary = server.summary;
      cell(
        tr,
        summary
          ? summary.byTransport.map((entry) => `${entry.transport}/${entry.protocol || '–'} ${entry.count}`).join(', ')
          : '–',
        'transports',
      );
      cell(tr, summary ? bytes(summary.rssBytes) : '–', 'memory');
      cell(tr, summary && summary.backplane ? `${summary.backplane.state}, ${summary.backplane.outages} outages` : '–');
      cell(tr, time(server.lastHeartbeat));
    });
    fill('#transports tbody', current.byTransport, (tr, entry) => {
      cell(tr, entry.transport);
      cell(tr, entry.protocol || '(handshake)');
      cell(tr, entry.count);
    });
    fill('#methods tbody', current.methods, (tr, method) => {
      tr.dataset.method = method.name;
      cell(tr, method.name);
      cell(tr, method.count);
      cell(tr, method.errors);
      cell(tr, method.p50.toFixed(2));
      cell(tr, method.p99.toFixed(2));
    });
    const p = snapshot.process;
    $('#process').textContent =
      `pid ${p.pid}, Node.js ${p.node}, up ${p.uptimeSeconds} s, heap ${bytes(p.heapUsedBytes)} of ${bytes(p.heapTotalBytes)}, RSS ${bytes(p.rssBytes)}`;
    plot(current, snapshot.at);
  }

  function plot(current, at) {
    if (chartHub !== current.path) {
      for (const list of series) list.length = 0;
      chartHub = current.path;
    }
    series[0].push(at / 1000);
    series[1].push(current.messagesInPerSecond);
    series[2].push(current.messagesOutPerSecond);
    series[3].push(current.connections);
    if (series[0].length > HISTORY) for (const list of series) list.shift();
    $('#chart').dataset.points = String(series[0].length);
    const width = Math.max(240, $('#chart').clientWidth);
    // One point alone gives the time axis no span to draw.
    if (chart === null && typeof uPlot === 'function' && series[0].length >= 2) {
      chart = new uPlot(
        {
          width,
          height: 200,
          series: [
            {},
            { label: 'in/s', stroke: '#0b6b2f' },
            { label: 'out/s', stroke: '#0b3d91' },
            { label: 'connections', stroke: '#b35c00', scale: 'count' },
          ],
          axes: [{}, {}, { scale: 'count', side: 1, grid: { show: false } }],
        },
        series,
        $('#chart'),
      );
    } else if (chart !== null) {
      if (Math.abs(chart.width - width) > 4) chart.setSize({ width, height: 200 });
      chart.setData(series);
    }
  }

  async function refreshView() {
    if (connection.state !== signalR.HubConnectionState.Connected || hub === '') return;
    try {
      if (view === 'connections') await refreshConnections();
      if (view === 'groups') await refreshGroups();
    } catch (error) {
      $('#status').textContent = `Error: ${error.message}`;
    }
  }

  async function refreshConnections() {
    const rows = await connection.invoke('listConnections', hub, $('#connection-search').value.trim());
    fill('#connections tbody', rows, (tr, row) => {
      tr.className = 'selectable' + (row.connectionId === selectedConnection ? ' selected' : '');
      tr.dataset.connectionId = row.connectionId;
      cell(tr, row.connectionId);
      cell(tr, row.userId);
      cell(tr, row.transport);
      cell(tr, row.protocol);
      cell(tr, row.serverName + (row.local ? '' : ' (remote)'));
      cell(tr, time(row.connectedAt));
      tr.addEventListener('click', () => {
        selectedConnection = row.connectionId;
        refreshView();
      });
    });
    if (selectedConnection === '') {
      $('#connection-details').hidden = true;
      return;
    }
    const details = await connection.invoke('connectionDetails', hub, selectedConnection);
    $('#connection-details').hidden = false;
    $('#details-id').textContent = selectedConnection;
    if (details === null) {
      $('#details-list').replaceChildren();
      $('#details-groups').replaceChildren();
      $('#details-id').textContent = `${selectedConnection} (gone)`;
      return;
    }
    const entries = [
      ['User', details.userId],
      ['Transport', details.transport],
      ['Protocol', details.protocol],
      ['Server', details.serverName],
      ['Connected since', details.connectedAt ? new Date(details.connectedAt).toLocaleString() : ''],
      ['Bytes queued', details.queuedBytes === undefined ? '(another server)' : details.queuedBytes],
      ['Address', details.remoteAddress],
      ['User agent', details.userAgent],
    ];
    $('#details-list').replaceChildren(
      ...entries.flatMap(([name, value]) => {
        const dt = document.createElement('dt');
        dt.textContent = name;
        const dd = document.createElement('dd');
        dd.textContent = text(value);
        return [dt, dd];
      }),
    );
    $('#details-groups').replaceChildren(
      ...details.groups.map((group) => {
        const item = document.createElement('li');
        item.dataset.group = group;
        item.append(group + ' ');
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'remove-from-group';
        remove.textContent = 'Remove';
        remove.addEventListener('click', () =>
          act(`Remove ${selectedConnection} from ${group}?`, 'remove from group', () =>
            connection.invoke('removeFromGroup', hub, selectedConnection, group),
          ),
        );
        item.append(remove);
        return item;
      }),
    );
  }

  async function refreshGroups() {
    const rows = await connection.invoke('listGroups', hub, $('#group-search').value.trim());
    fill('#groups tbody', rows, (tr, row) => {
      tr.dataset.group = row.name;
      cell(tr, row.name);
      cell(tr, row.count);
      cell(tr, row.localMembers);
      const td = cell(tr, '');
      const trace = document.createElement('button');
      trace.type = 'button';
      trace.textContent = 'Trace';
      trace.addEventListener('click', () => {
        $('#trace-kind').value = 'group';
        $('#trace-target').value = row.name;
        showView('trace');
      });
      td.append(trace);
    });
  }

  $('#hub-select').addEventListener('change', (event) => {
    hub = event.target.value;
    selectedConnection = '';
    if (lastSnapshot) renderSnapshot(lastSnapshot);
    refreshView();
  });
  $('#connection-search').addEventListener('input', () => refreshView());
  $('#group-search').addEventListener('input', () => refreshView());
  $('#close-connection').addEventListener('click', () => {
    const id = selectedConnection;
    const allowReconnect = $('#close-allow-reconnect').checked;
    act(`Close connection ${id}${allowReconnect ? ' (it may reconnect)' : ' (no reconnect)'}?`, 'close', () =>
      connection.invoke('closeConnection', hub, id, allowReconnect),
    );
  });
  $('#trace-connection').addEventListener('click', () => {
    $('#trace-kind').value = 'connection';
    $('#trace-target').value = selectedConnection;
    showView('trace');
  });
  $('#send-to-connection').addEventListener('click', () => {
    $('#send-kind').value = 'connection';
    $('#send-target').value = selectedConnection;
    showView('send');
  });

  // Live trace
  function traceButtons() {
    $('#trace-start').disabled = tracing;
    $('#trace-pause').disabled = !tracing;
    $('#trace-stop').disabled = !tracing;
    $('#trace-pause').textContent = tracePaused ? 'Resume' : 'Pause';
  }
  $('#trace-start').addEventListener('click', async () => {
    const kind = $('#trace-kind').value;
    const target = $('#trace-target').value.trim();
    if (target === '') return;
    await connection.invoke('startTrace', hub, kind, target);
    tracing = true;
    tracePaused = false;
    $('#trace-status').textContent = `Tracing ${kind} ${target}`;
    traceButtons();
  });
  $('#trace-stop').addEventListener('click', async () => {
    await connection.invoke('stopTrace');
    tracing = false;
    $('#trace-status').textContent = 'Stopped';
    traceButtons();
  });
  $('#trace-pause').addEventListener('click', () => {
    tracePaused = !tracePaused;
    traceButtons();
  });
  $('#trace-clear').addEventListener('click', () => $('#trace-log tbody').replaceChildren());
  let droppedTotal = 0;
  connection.on('trace', (batch) => {
    droppedTotal += batch.dropped;
    if (batch.dropped > 0)
      $('#trace-status').textContent = `Tracing (${droppedTotal} messages over the rate not shown)`;
    if (tracePaused) return;
    const body = $('#trace-log tbody');
    for (const entry of batch.entries) {
      const tr = document.createElement('tr');
      tr.className = `dir-${entry.direction}`;
      cell(tr, clock(entry.at));
      cell(tr, entry.direction === 'in' ? '→ in' : '← out');
      cell(tr, entry.connectionId);
      cell(tr, entry.type);
      cell(tr, entry.method);
      cell(tr, entry.args, 'args');
      cell(tr, `${entry.size} B${entry.truncated ? ' (cut)' : ''}`);
      body.prepend(tr);
    }
    while (body.rows.length > TRACE_ROWS) body.deleteRow(body.rows.length - 1);
  });

  // Send
  $('#send-button').addEventListener('click', () => {
    const kind = $('#send-kind').value;
    const target = $('#send-target').value.trim();
    const method = $('#send-method').value.trim();
    let args;
    try {
      args = JSON.parse($('#send-args').value || '[]');
      if (!Array.isArray(args)) args = [args];
    } catch (error) {
      log({ ok: false, message: `Arguments are not JSON: ${error.message}` }, 'send');
      return;
    }
    act(`Send ${method} to ${kind} ${target}?`, 'send', () =>
      connection.invoke('sendMessage', hub, kind, target, method, args),
    );
  });

  connection.on('snapshot', (snapshot) => {
    renderSnapshot(snapshot);
    refreshView();
  });
  connection.onreconnecting(() => {
    $('#status').textContent = 'Reconnecting…';
    tracing = false;
    traceButtons();
  });
  connection.onreconnected(() => {
    $('#status').textContent = `Connected (${connection.connectionId ? 'again' : ''})`;
  });
  connection.onclose(() => {
    $('#status').textContent = 'Disconnected';
  });
  connection.start().then(
    () => {
      $('#status').textContent = 'Connected';
    },
    (error) => {
      $('#status').textContent = `Failed: ${error.message}`;
    },
  );
  window.addEventListener('resize', () => {
    if (chart !== null) chart.setSize({ width: Math.max(240, $('#chart').clientWidth), height: 200 });
  });
})();
