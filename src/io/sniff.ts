/**
 * What a file is, from its first bytes: the formats groupnorm reads, and the usual files that are
 * not tensors in a format it reads, each with what to do instead.
 */

/** How many leading bytes `identify` looks at. */
export const SNIFF_BYTES = 512;

export type Format = "npy" | "npz" | "safetensors";

const startsWith = (b: Uint8Array, sig: number[]) => sig.every((v, i) => b[i] === v);

/** The format of a file from its leading bytes, or null when it is none groupnorm reads. */
export function formatOf(b: Uint8Array, fileSize: number): Format | null {
  if (startsWith(b, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) return "npy";
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06])) return "npz";
  if (b.length >= 9 && b[8] === 0x7b) {
    // safetensors: an 8-byte little-endian header length, then the JSON header, which starts with
    // a key (a header whose length lies is still one, refused for its length)
    const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    if (b[9] === 0x22 || (n > 1n && n + 8n <= BigInt(fileSize))) return "safetensors";
  }
  return null;
}

/** The first member name of a zip archive (its first local file header), if any. */
export function firstZipMember(b: Uint8Array): string | null {
  if (b.length < 30 || !startsWith(b, [0x50, 0x4b, 0x03, 0x04])) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const n = dv.getUint16(26, true);
  if (30 + n > b.length) return null;
  return Buffer.from(b.subarray(30, 30 + n)).toString("latin1");
}

/** Why a file that is not a tensor file groupnorm reads is refused, and what to do instead. */
export function notATensorFile(b: Uint8Array): string {
  const member = firstZipMember(b);
  if (member !== null && /(^|\/)data\.pkl$/.test(member)) {
    return "is a PyTorch file (torch.save, a zip holding a pickle): pickles are never unpickled; save the tensor with numpy.save(path, tensor.numpy()), or with safetensors.torch.save_file (bfloat16 too)";
  }
  if (b[0] === 0x80 && b[1] >= 2 && b[1] <= 5) {
    return "is a Python pickle (such as an old torch.save file): pickles are never unpickled; save the array with numpy.save";
  }
  if (startsWith(b, [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])) return "is an HDF5 file (h5py, Keras): read the dataset and save it with numpy.save";
  if (startsWith(b, [0x1f, 0x8b])) return "is gzip-compressed: decompress it first (gunzip)";
  if (startsWith(b, [0x28, 0xb5, 0x2f, 0xfd])) return "is zstd-compressed: decompress it first (unzstd)";
  if (b.length > 0 && isText(b)) return "is a text file, not a .npy file: load it (numpy.loadtxt) and save the array with numpy.save";
  return "is not a tensor file groupnorm reads (.npy, .npz or safetensors); save the array with numpy.save";
}

function isText(b: Uint8Array): boolean {
  let text = 0;
  for (const c of b) if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 0xc2) text++;
  return text === b.length;
}
