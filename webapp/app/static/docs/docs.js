fetch('/api/openapi.json').then(r => r.json()).then(spec => {
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push({path, method, op});
    }
  }
  const root = document.getElementById('ops');
  root.textContent = '';
  const resolve = s => s && s.$ref ? spec.components.schemas[s.$ref.split('/').pop()] : s;
  for (const tag of Object.keys(byTag).sort()) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const {path, method, op} of byTag[tag]) {
      const d = document.createElement('details'); d.className = 'op';
      const s = document.createElement('summary');
      s.innerHTML = `<span class="m ${method}">${method}</span> <code></code> `;
      s.querySelector('code').textContent = path;
      s.appendChild(document.createTextNode(op.summary + (op.security ? ' 🔒' : '')));
      d.appendChild(s);
      const body = op.requestBody && Object.values(op.requestBody.content)[0].schema;
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({request: resolve(body) || null,
        responses: Object.keys(op.responses)}, null, 2);
      d.appendChild(pre); root.appendChild(d);
    }
  }
});
