/** The `encoder` slot: texts in, unit-length vectors out (clustering compares them by cosine). */
export interface Encoder {
  readonly name: string;
  readonly model: string;
  readonly dimension: number;
  embed(texts: ReadonlyArray<string>, options?: { readonly signal?: AbortSignal }): Promise<Float32Array[]>;
}

declare module "@bdc/core" {
  interface SlotTypes {
    encoder: Encoder;
  }
}
