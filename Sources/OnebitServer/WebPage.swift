/// The page served at `/`: a chat that streams from `/v1/chat/completions` and live statistics from `/stats`.
/// One self-contained string, so the binary needs no asset files and the page no network.
enum WebPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>onebit</title>
        <style>
          body { font: 15px/1.5 system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
          header { padding: 8px 16px; background: #1f2933; color: #f5f7fa; display: flex; gap: 24px; flex-wrap: wrap; }
          header b { font-weight: 600; }
          #stats span { margin-right: 16px; font-variant-numeric: tabular-nums; }
          #log { flex: 1; overflow-y: auto; padding: 16px; }
          .msg { max-width: 760px; margin: 0 auto 12px; white-space: pre-wrap; }
          .user { color: #1f2933; font-weight: 600; }
          .assistant { color: #323f4b; }
          .error { color: #b00020; }
          form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid #d9e2ec; }
          textarea { flex: 1; font: inherit; min-height: 3em; }
          input { font: inherit; width: 12em; }
          button { font: inherit; }
        </style>
        </head>
        <body>
        <header><b>onebit</b><span id="model"></span>
          <div id="stats"><span id="tps">0 tok/s</span><span id="queue">queue 0</span>
          <span id="batch">batch 0</span><span id="running">running 0</span><span id="kv">kv 0%</span></div>
        </header>
        <div id="log"></div>
        <form id="form">
          <textarea id="input" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
          <input id="key" type="password" placeholder="API key (if any)">
          <button id="send">Send</button>
        </form>
        <script>
        const log = document.getElementById('log'), input = document.getElementById('input');
        const key = document.getElementById('key');
        key.value = localStorage.getItem('onebit-key') || '';
        const history = [];
        function add(cls, text) {
          const div = document.createElement('div');
          div.className = 'msg ' + cls; div.textContent = text; log.appendChild(div);
          log.scrollTop = log.scrollHeight; return div;
        }
        function headers() {
          const h = {'Content-Type': 'application/json'};
          if (key.value) h['Authorization'] = 'Bearer ' + key.value;
          return h;
        }
        async function send(text) {
          localStorage.setItem('onebit-key', key.value);
          history.push({role: 'user', content: text});
          add('user', text);
          const out = add('assistant', '');
          let reply = '';
          try {
            const res = await fetch('/v1/chat/completions', {method: 'POST', headers: headers(),
              body: JSON.stringify({messages: history, stream: true, max_tokens: 512})});
            if (!res.ok) { const e = await res.json(); throw new Error(e.error ? e.error.message : res.statusText); }
            const reader = res.body.getReader(), decoder = new TextDecoder();
            let buffer = '';
            for (;;) {
              const {value, done} = await reader.read();
              if (done) break;
              buffer += decoder.decode(value, {stream: true});
              let end;
              while ((end = buffer.indexOf('\n\n')) >= 0) {
                const frame = buffer.slice(0, end); buffer = buffer.slice(end + 2);
                if (!frame.startsWith('data: ')) continue;
                const data = frame.slice(6);
                if (data === '[DONE]') continue;
                const chunk = JSON.parse(data);
                if (chunk.error) throw new Error(chunk.error.message);
                const delta = chunk.choices.length ? chunk.choices[0].delta : {};
                if (delta.content) { reply += delta.content; out.textContent = reply; log.scrollTop = log.scrollHeight; }
              }
            }
            history.push({role: 'assistant', content: reply});
          } catch (err) {
            history.pop(); out.className = 'msg error'; out.textContent = String(err.message || err);
          }
        }
        document.getElementById('form').addEventListener('submit', e => {
          e.preventDefault(); const text = input.value.trim(); if (!text) return; input.value = ''; send(text);
        });
        input.addEventListener('keydown', e => {
          if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); document.getElementById('form').requestSubmit(); }
        });
        let lastTokens = null, lastTime = null;
        async function poll() {
          try {
            const s = await (await fetch('/stats')).json();
            const now = performance.now();
            if (lastTokens !== null) {
              const rate = (s.generated_tokens - lastTokens) / ((now - lastTime) / 1000);
              document.getElementById('tps').textContent = rate.toFixed(1) + ' tok/s';
            }
            lastTokens = s.generated_tokens; lastTime = now;
            document.getElementById('model').textContent = ' ' + s.model + ' (' + s.summary + ')';
            document.getElementById('queue').textContent = 'queue ' + s.queued;
            document.getElementById('batch').textContent = 'batch ' + s.batch_sequences + ' seq / ' + s.batch_tokens + ' tok';
            document.getElementById('running').textContent = 'running ' + s.running;
            const kv = s.kv_cache_capacity ? 100 * s.kv_cache_tokens / s.kv_cache_capacity : 0;
            document.getElementById('kv').textContent = 'kv ' + kv.toFixed(1) + '%';
          } catch (err) { /* the server may be restarting; try again next tick */ }
        }
        setInterval(poll, 1000); poll();
        </script>
        </body>
        </html>
        """#
}
