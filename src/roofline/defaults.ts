/** roofline's default tensor (apart from the measuring code, so the CLI's help loads without it). */
export const DEFAULT_ROOFLINE_SHAPE = [16, 512, 64, 64];
export const DEFAULT_ROOFLINE_GROUPS = 32;
