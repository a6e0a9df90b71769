import xxhash from 'xxhash-wasm';

/** XXH64 of `data` in one call, as `xxh64:hex`: the reference for the streaming checksums. */
export async function checksumOfBuffer(data: Uint8Array): Promise<string> {
  const { h64Raw } = await xxhash();
  return `xxh64:${h64Raw(data).toString(16).padStart(16, '0')}`;
}
