// @ts-check
/**
 * UTF-8 TextEncoder / TextDecoder for the mini-program runtime, which has neither;
 * the wasm-bindgen glue needs both to pass strings across the WebAssembly boundary.
 */

class TextEncoder {
  get encoding() {
    return 'utf-8';
  }

  encode(input) {
    const str = String(input === undefined ? '' : input);
    const out = [];
    for (let i = 0; i < str.length; i += 1) {
      let code = str.charCodeAt(i);
      // Join a surrogate pair; a lone surrogate becomes U+FFFD, as the standard says.
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < str.length) {
        const next = str.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          i += 1;
        } else {
          code = 0xfffd;
        }
      } else if (code >= 0xd800 && code <= 0xdfff) {
        code = 0xfffd;
      }
      if (code < 0x80) out.push(code);
      else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 63));
      else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      else out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    }
    return new Uint8Array(out);
  }

  encodeInto(input, dest) {
    const bytes = this.encode(input);
    // Only whole characters: stop before a sequence that would not fit.
    let written = bytes.length;
    if (written > dest.length) {
      written = dest.length;
      while (written > 0 && (bytes[written] & 0xc0) === 0x80) written -= 1;
    }
    dest.set(bytes.subarray(0, written));
    const read = new TextDecoder().decode(bytes.subarray(0, written)).length;
    return { read, written };
  }
}

class TextDecoder {
  constructor(label) {
    if (label && !/^utf-?8$/i.test(label)) throw new RangeError('only utf-8 is supported');
  }

  get encoding() {
    return 'utf-8';
  }

  decode(input) {
    if (!input) return '';
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input.buffer || input);
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      const b = bytes[i];
      let code = 0xfffd;
      let len = 1;
      if (b < 0x80) code = b;
      else if (b >= 0xc2 && b < 0xe0) len = 2;
      else if (b >= 0xe0 && b < 0xf0) len = 3;
      else if (b >= 0xf0 && b < 0xf5) len = 4;
      if (len > 1) {
        let value = b & (0xff >> (len + 1));
        let valid = i + len <= bytes.length;
        for (let k = 1; valid && k < len; k += 1) {
          const c = bytes[i + k];
          if ((c & 0xc0) !== 0x80) valid = false;
          else value = (value << 6) | (c & 63);
        }
        const min = [0, 0, 0x80, 0x800, 0x10000][len];
        if (valid && value >= min && value <= 0x10ffff && !(value >= 0xd800 && value <= 0xdfff)) {
          code = value;
        } else {
          len = 1;
        }
      }
      if (code > 0xffff) {
        code -= 0x10000;
        out += String.fromCharCode(0xd800 + (code >> 10), 0xdc00 + (code & 1023));
      } else {
        out += String.fromCharCode(code);
      }
      i += len;
    }
    return out;
  }
}

module.exports = { TextEncoder, TextDecoder };
