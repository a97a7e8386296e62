/** roofline's defaults (apart from the measuring code, so the CLI's help loads without it). */
export const DEFAULT_ROOFLINE_GROUPS = 32;
/** Without --shape the tensor is N × 512 × 64 × 64, N sized to the host (roofline/sizes.ts: defaultShape). */
export const DEFAULT_ROOFLINE_SHAPE_TEXT = "N,512,64,64 with X ≥ 4× the last-level cache";
