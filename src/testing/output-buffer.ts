// Keeps only the tail of a child's stdout/stderr: enough to explain a failed
// start without letting a chatty server grow memory without bound.

const DEFAULT_LIMIT = 4096;

export class OutputBuffer {
  private text = '';

  constructor(private readonly limit: number = DEFAULT_LIMIT) {}

  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }

  toString(): string {
    return this.text;
  }

  /** Output formatted for inclusion in an error message. */
  describe(): string {
    const trimmed = this.text.trim();
    return trimmed === '' ? '(no output)' : trimmed;
  }
}
