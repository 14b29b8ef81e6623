import { describe, expect, it } from "vitest";
import { eventLine } from "./log.ts";

const AT = new Date("2026-11-23T22:24:52.459Z");

describe("eventLine()", () => {
  it("writes pino's line: level 30, ISO time, the event's keys, msg = the phase", () => {
    expect(eventLine({ phase: "decide", ok: true, ms: 12.5, verdict: "boot" }, AT)).toBe(
      '{"level":30,"time":"2026-11-23T22:24:52.459Z","phase":"decide","ok":true,"ms":12.5,"verdict":"boot","msg":"decide"}\n',
    );
  });

  it("gives a failed phase level 50", () => {
    expect(eventLine({ phase: "composefs", ok: false, ms: 1, error: "EIO" }, AT)).toBe(
      '{"level":50,"time":"2026-11-23T22:24:52.459Z","phase":"composefs","ok":false,"ms":1,"error":"EIO","msg":"composefs"}\n',
    );
  });

  it("writes a bigint as a string and leaves out undefined values", () => {
    expect(eventLine({ phase: "p", ok: true, ino: 342n, absent: undefined }, AT)).toBe(
      '{"level":30,"time":"2026-11-23T22:24:52.459Z","phase":"p","ok":true,"ino":"342","msg":"p"}\n',
    );
  });
});
