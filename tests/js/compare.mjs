// Deep comparison of two JSON values; returns null when equal, else the first difference.
// Plain ES module so Node and the Chromium page share it.
export function firstDiff(a, b, path = '$') {
  if (a === b) return null;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') {
    return `${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDiff(a[k], b[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

// The closing line test logs are read for: "N passed, N failed".
export function summary(results) {
  const failed = results.filter((r) => !r.ok);
  for (const r of results) {
    console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ms !== undefined ? ` (${r.ms.toFixed(1)} ms)` : ''}${r.ok ? '' : `: ${r.diff}`}`);
  }
  console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
  return failed.length === 0;
}
