/**
 * The .npy format (NumPy's numpy/lib/format.py, NEP 1): every version NumPy writes (1.0/2.0/3.0),
 * either byte order, C or Fortran order, float16/32/64; written as NumPy writes it.
 */
export { encodeNpyHeader } from "./encode.js";
export { type NpyHeader, readNpyHeader } from "./header.js";
export { NpyReader, readNpy } from "./reader.js";
export { NpyWriter, writeNpy } from "./writer.js";
