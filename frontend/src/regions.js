/*
 * Country columns (payload columns[].geo = "iso3166-1-alpha2"): names in the page language from the browser's
 * Intl.DisplayNames, and the ISO numeric ids that world-atlas uses for its geometries. No DOM access.
 */
import codes from 'i18n-iso-countries/codes.json' with { type: 'json' };

export const GEO_ALPHA2 = 'iso3166-1-alpha2';

/** ISO 3166-1 alpha-2 -> numeric (as the zero-padded strings world-atlas uses as feature ids). */
export const NUMERIC_BY_ALPHA2 = new Map(codes.map((row) => [row[0], row[2]]));

/**
 * A function naming alpha-2 codes in `lang`; it returns the code itself for codes the browser does not know
 * (or when Intl.DisplayNames is missing), so a country is never shown as an empty label.
 */
export function regionNamer(lang) {
  let names = null;
  try {
    names = new Intl.DisplayNames([lang], { type: 'region', fallback: 'code' });
  } catch (err) {
    names = null;
  }
  return (code) => {
    if (!names) return code;
    try {
      return names.of(code) || code;
    } catch (err) {
      return code;  // RangeError: not a well-formed region code
    }
  };
}
