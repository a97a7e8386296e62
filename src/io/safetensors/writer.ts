/**
 * Writing a safetensors file: every tensor's size is known before any value is, so the header (with
 * each tensor's data_offsets, padded with spaces to 8 bytes as the reference writer does) goes first
 * and the data is streamed after it, the tensors laid out back to back in the order written.
 */
import type { Dtype } from "../../core/dtype.js";
import { InputError } from "../../errors.js";
import { ContainerWriter, type Member } from "../container-writer.js";
import { MAX_HEADER_BYTES, ST_NAME } from "./header.js";

/** The header bytes (length prefix included) for tensors laid out in `order`. */
export function encodeSafetensorsHeader(order: ReadonlyArray<Pick<Member, "key" | "dtype" | "shape" | "bytes">>, metadata?: Record<string, string>): Uint8Array {
  const entries: Record<string, unknown> = {};
  if (metadata) entries.__metadata__ = metadata;
  let at = 0;
  for (const m of order) {
    entries[m.key] = { dtype: ST_NAME[m.dtype], shape: m.shape, data_offsets: [at, at + m.bytes] };
    at += m.bytes;
  }
  let json = Buffer.from(JSON.stringify(entries), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new RangeError("encodeSafetensorsHeader: header over 100 MB");
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

export class SafetensorsWriter extends ContainerWriter {
  protected check(key: string, _dtype: Dtype, _shape: readonly number[]): void {
    if (key === "__metadata__") throw new InputError("a safetensors tensor cannot be named __metadata__", this.target.display);
    if (this.members.some((m) => m.key === key)) throw new InputError(`the tensor ${JSON.stringify(key)} is named twice`, this.target.display);
  }

  protected async begin(order: Member[]): Promise<void> {
    await this.append(encodeSafetensorsHeader(order));
  }

  protected async startMember(): Promise<void> {}

  protected async data(_m: Member, bytes: Uint8Array): Promise<void> {
    await this.append(bytes);
  }

  protected async endMember(): Promise<void> {}

  protected async end(): Promise<void> {}
}
