// The browser's verifier: cairn_verify.wasm (cairn-spec's verification built for
// wasm32-unknown-unknown, ui/wasm), loaded with plain WebAssembly.instantiate and called through
// its extern "C" functions. Inputs are copied into the module's memory (cairn_alloc), each call
// returns a pointer to a little-endian u32 length and that many bytes of JSON, and everything is
// freed (cairn_free) after. A trap (a bug: cairn-spec does not panic on input) discards the
// instance, so that the next call starts from a fresh one.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
/** The module's input limit (cairn_spec::export::MAX_EXPORT_BYTES). */
export const MAX_INPUT_BYTES = 256 * 1024 * 1024;

let loading = null;

async function module() {
  if (!loading) {
    loading = (async () => {
      const response = await fetch('cairn_verify.wasm', { cache: 'no-cache', credentials: 'omit' });
      if (!response.ok) throw new Error('the verifier did not load: HTTP ' + response.status);
      const { instance } = await WebAssembly.instantiate(await response.arrayBuffer(), {});
      return instance.exports;
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}

function bytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  return encoder.encode(String(input ?? ''));
}

/** Calls the exported verdict function `name` with these inputs; answers its JSON verdict. */
async function call(name, ...inputs) {
  const wasm = await module();
  const buffers = inputs.map(bytes);
  for (const buffer of buffers) {
    if (buffer.length > MAX_INPUT_BYTES) {
      return { ok: false, error: `the input has ${buffer.length} bytes, more than the limit of ${MAX_INPUT_BYTES}` };
    }
  }
  const reserved = [];
  try {
    const args = [];
    for (const buffer of buffers) {
      const ptr = wasm.cairn_alloc(buffer.length) >>> 0;
      if (ptr === 0) throw new Error('the verifier is out of memory');
      reserved.push([ptr, buffer.length]);
      new Uint8Array(wasm.memory.buffer, ptr, buffer.length).set(buffer);
      args.push(ptr, buffer.length);
    }
    const result = wasm[name](...args) >>> 0;
    if (result === 0) throw new Error('the verifier is out of memory');
    const length = new DataView(wasm.memory.buffer).getUint32(result, true);
    const text = decoder.decode(new Uint8Array(wasm.memory.buffer, result, 4 + length).slice(4));
    wasm.cairn_free(result, 4 + length);
    return JSON.parse(text);
  } catch (error) {
    if (error instanceof WebAssembly.RuntimeError) {
      loading = null; // the instance's state is unknown after a trap
      return { ok: false, error: 'the verifier failed: ' + error.message };
    }
    throw error;
  } finally {
    if (loading) {
      for (const [ptr, length] of reserved) wasm.cairn_free(ptr, length);
    }
  }
}

/** What a policy trusts, or why it is not one. */
export const checkPolicy = (policy) => call('cairn_check_policy', policy);
/** A receipt (JSON or tlog-proof) against a policy. */
export const verifyReceipt = (receipt, policy) => call('cairn_verify_receipt', receipt, policy);
/** A receipt, tlog-proof or export bundle against a policy, told apart by its contents. */
export const verifyDocument = (document, policy) => call('cairn_verify_document', document, policy);
/** A checkpoint note against a policy (empty policy: only read). */
export const verifyCheckpoint = (note, policy) => call('cairn_verify_checkpoint', note, policy);
/** That `newNote` extends `oldNote`, with the log's /proof/consistency answer. */
export const verifyConsistency = (oldNote, newNote, proof, policy) =>
  call('cairn_verify_consistency', oldNote, newNote, proof, policy);
/** The events API's answer for one event against its receipt and a policy. */
export const verifyEvent = (answer, receipt, policy) => call('cairn_verify_event', answer, receipt, policy);
