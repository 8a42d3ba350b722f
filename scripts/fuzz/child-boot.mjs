// Starts a fuzzer child (child.ts) from source. h5wasm is loaded before tsx's hooks are registered:
// through them its multi-megabyte Emscripten bundle costs ~600 MB of resident memory and seconds,
// which would hide every case's own memory under a constant.
const h5wasm = (await import('h5wasm/node')).default;
await h5wasm.ready;
const { register } = await import('tsx/esm/api');
register();
await import('./child.ts');
