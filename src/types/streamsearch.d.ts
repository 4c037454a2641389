/** streamsearch 1.x (busboy's boundary matcher) ships no types. */
declare module 'streamsearch' {
  type MatchCallback = (isMatch: boolean, data: Buffer | undefined, start: number, end: number, isDataSafe: boolean) => void;
  export default class StreamSearch {
    constructor(needle: string | Buffer, callback: MatchCallback);
    push(chunk: Buffer, position?: number): number;
    /** Hands any bytes held back (a possible partial match) to the callback as data. */
    destroy(): void;
    reset(): void;
  }
}
