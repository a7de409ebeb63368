/*
 * Bidirectional text (issue: "Arabic mixes directions"). Inside right-to-left text every number, range, code and
 * Latin-script fragment is wrapped in a Unicode directional isolate, so the bidi algorithm treats it as one
 * neutral unit: "48 and over" keeps its own order inside Arabic text. A numeric range is one left-to-right unit
 * (as Arabic typesetting shows number ranges, and as the Unicode algorithm itself shows "9-17" written with a
 * hyphen), so "9–17" never flips to "17–9", and age bands from the codebook and count ranges from the page read
 * the same way. Isolates are characters,
 * so they work the same in text nodes, attributes (title, aria-label), SVG text and the clipboard. Left-to-right
 * pages show only left-to-right text and numbers, which need no isolation, so nothing is added there.
 */
export const LRI = '\u2066';
export const RLI = '\u2067';
export const PDI = '\u2069';

// Hebrew, Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic, Arabic supplements and presentation forms.
const RTL_LETTER = /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFC]/u;
const ANY_LETTER = /\p{L}/u;

/** Direction of the first strong (letter) character, or null when the text has none (digits, punctuation). */
export function firstStrongDirection(text) {
  for (const ch of text) {
    if (RTL_LETTER.test(ch)) return 'rtl';
    if (ANY_LETTER.test(ch)) return 'ltr';
  }
  return null;
}

/**
 * Isolate free text (a label, a title) in an RTL page in its own direction: right to left when its first letter
 * is Arabic, left to right otherwise, so a digits-only label such as "9–17" reads like the page's own ranges.
 */
export function isolateText(text, pageDir) {
  if (pageDir !== 'rtl' || text === '') return text;
  return (firstStrongDirection(text) === 'rtl' ? RLI : LRI) + text + PDI;
}

// Direction marks Intl puts into Arabic numbers (ALM, LRM, RLM): they would turn a signed number right to left
// ("34-") while ranges and percentages beside it read left to right.
const INTL_MARKS = /[\u061C\u200E\u200F]/g;

/** Isolate a formatted number as one left-to-right unit, like ranges, so "-34 (-1.8%)" keeps its signs in place. */
export function isolateNumber(text, pageDir) {
  return pageDir === 'rtl' ? LRI + text.replace(INTL_MARKS, '') + PDI : text;
}

/** Isolate a code (ISO country code, raw file value, checksum) or a numeric range: always left to right. */
export function isolateCode(text, pageDir) {
  return pageDir === 'rtl' ? LRI + text + PDI : text;
}

/** Remove isolates (for comparisons and machine-readable exports). */
export function stripIsolates(text) {
  return text.replace(/[\u2066-\u2069]/g, '');
}
