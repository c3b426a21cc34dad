// Playground: text-to-speech with voice, format, speed/pitch/volume and emotion controls
// (stored, or streamed and played while it is made) with a waveform; speech-to-text of an
// upload or a recording, with the transcript, the timing of each segment and word, and
// the transcript as SRT / WebVTT subtitles to download.

import { api, numericKey, upload } from "./api.js";
import {
  PcmStreamPlayer, Recorder, WaveformView, parseWavHeader, pcm16ToFloat32, wavBlob,
} from "./audio.js";
import { getLang, languageName, onLangChange, t } from "./i18n.js";
import { RecordButton } from "./microphone.js";
import { fillVoiceSelect } from "./roles.js";
import { scriptMismatch, voiceForText, voiceLabel } from "./voice-choice.js";
import * as store from "./store.js";
import {
  $, busy, clear, formatBytes, formatSeconds, h, progress, setStatus, showError, stopClip,
} from "./ui.js";

export const id = "playground";

const SESSION_KEY = "tingshuo.playground.session";
const STANDARD_RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000];

const streamPlayer = new PcmStreamPlayer();

/** What the page produced; tests read it through window.__console.playground. */
export const stats = {
  tts: 0, lastTts: null, streams: 0, lastStream: null, stt: 0, lastStt: null,
  stream: streamPlayer.stats,
};

let waveform = null;
let outputUrl = null;
let sttSample = null; // {blob, name}
let sttUrl = null;
const sttRecorder = new RecordButton({
  button: "#stt-record", meter: "#stt-meter", status: "#stt-status", maxSeconds: 300,
});
let subtitleUrls = [];
let textTouched = false;

const DEFAULT_TEXT = {
  zh: "你好，欢迎使用听说。这是一段语音合成的示例，你可以调整语速、音调和音量。",
  en: "Hello, and welcome to Tingshuo. This is a short speech synthesis sample; try changing the speed, pitch and volume.",
};

// ---- controls ----------------------------------------------------------------------------

function sliderValue(name) {
  return Number.parseFloat($(`#tts-${name}`).value);
}

function syncOutputs() {
  for (const name of ["speed", "pitch", "volume", "intensity"]) {
    $(`#tts-${name}-out`).textContent = sliderValue(name).toFixed(2);
  }
  const emotion = $("#tts-emotion").value;
  $("#tts-intensity").disabled = !emotion;
  $("#tts-emotion-hint").hidden = !emotion;
  $("#tts-format").disabled = Boolean(emotion);
  $("#tts-stream").disabled = Boolean(emotion);
}

function applyDefaults() {
  if (!textTouched) $("#tts-text").value = DEFAULT_TEXT[getLang()];
  checkScript();
}

let voiceTypes = [];
let voiceDetails = new Map();

/**
 * The voice that reads the text: the one chosen, or with "automatic" (the first choice)
 * the voice of the text's own language, so English text is never spelled out by a
 * Chinese voice.
 */
function chosenVoice(text) {
  return $("#tts-voice").value || voiceForText(voiceTypes, text);
}

/** Warn when the text is in a script the chosen voice does not read (English for a Chinese voice). */
function checkScript() {
  const hint = $("#tts-script-hint");
  const chosen = $("#tts-voice").value;
  const type = chosen && voiceTypes.find((item) => item.voice_type === chosen);
  const text = $("#tts-text").value;
  const mismatch = Boolean(type) && scriptMismatch(type, text, voiceDetails.get(chosen));
  hint.hidden = !mismatch;
  hint.textContent = mismatch ? t("pg.scriptMismatch", { voice: voiceLabel(type) }) : "";
  const auto = !chosen && text.trim()
    ? voiceTypes.find((item) => item.voice_type === voiceForText(voiceTypes, text)) : null;
  $("#tts-voice-auto").textContent = auto ? t("pg.autoVoice", { voice: voiceLabel(auto) }) : "";
}

async function loadVoices(force = false) {
  voiceTypes = await fillVoiceSelect($("#tts-voice"), null, { force, auto: true });
  voiceDetails = await store.voiceDetails().catch(() => new Map());
  checkScript();
}

function request() {
  const text = $("#tts-text").value.trim();
  if (!text) throw new Error(t("pg.needText"));
  const voice = chosenVoice(text);
  if (!voice) throw new Error(t("pg.needVoice"));
  return {
    text, voice_type: voice, format: $("#tts-format").value,
    speed: sliderValue("speed"), pitch: sliderValue("pitch"), volume: sliderValue("volume"),
  };
}

/** The form as a request body, or null once what is missing is shown in ``statusEl``. */
function requestOrShow(statusEl) {
  try {
    return request();
  } catch (err) {
    showError(err, statusEl);
    return null;
  }
}

/** A steady "still working" line with the seconds spent so far. */
function ticker(statusEl, key) {
  const started = performance.now();
  const show = () => setStatus(statusEl,
    t(key, { seconds: ((performance.now() - started) / 1000).toFixed(1) }));
  show();
  const timer = setInterval(show, 200);
  return () => clearInterval(timer);
}

// ---- output ------------------------------------------------------------------------------

/** The download button saves what the player holds, under a name that says what it is. */
function offerDownload(src, format) {
  const link = $("#tts-download");
  link.href = src;
  link.download = `tingshuo-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.${format}`;
}

function setOutput(src, meta, format = "mp3") {
  if (outputUrl) URL.revokeObjectURL(outputUrl);
  outputUrl = src.startsWith("blob:") ? src : null;
  $("#tts-output").hidden = false;
  const audio = $("#tts-audio");
  audio.src = src;
  offerDownload(src, format);
  $("#tts-meta").textContent = meta.filter(Boolean).join(" · ");
  waveform.draw();
}

function nearestRate(rate) {
  return STANDARD_RATES.reduce((best, candidate) =>
    (Math.abs(candidate - rate) < Math.abs(best - rate) ? candidate : best), 22050);
}

async function showResult(url, format, meta, { duration = null, size = null } = {}) {
  waveform.clear();
  if (format === "pcm") {
    // Raw PCM cannot go into an <audio> element: wrap it in a WAV header here.
    const response = await fetch(url);
    if (!response.ok) throw new Error(t("error.http", { status: response.status }));
    const bytes = new Uint8Array(await response.arrayBuffer());
    const rate = duration ? nearestRate((size || bytes.byteLength) / 2 / duration) : 22050;
    setOutput(URL.createObjectURL(wavBlob(bytes, rate)), [...meta, `${rate} Hz`], "wav");
    waveform.setSamples(pcm16ToFloat32(bytes.subarray(0, bytes.byteLength - (bytes.byteLength % 2))),
      bytes.byteLength / 2 / rate);
  } else {
    setOutput(url, meta, format || "mp3");
    try {
      const response = await fetch(url);
      if (response.ok) await waveform.loadEncoded(await response.arrayBuffer());
    } catch (err) {
      // The player still works; only the waveform is missing.
      console.warn("waveform unavailable", err);
    }
  }
  const audio = $("#tts-audio");
  try {
    await audio.play();
  } catch {
    // Autoplay refused: the controls are there.
  }
}

// ---- synthesis ---------------------------------------------------------------------------

async function synthesize(event) {
  event.preventDefault();
  const status = $("#tts-status");
  const body = requestOrShow(status);
  if (!body) return;
  const emotion = $("#tts-emotion").value;
  stopClip();
  streamPlayer.stop();
  const stop = ticker(status, "pg.synthesizing");
  try {
    await busy($("#tts-submit"), async () => {
      if (emotion) {
        const key = `${body.voice_type}|${body.text}|${emotion}|${sliderValue("intensity")}|${body.speed}|${body.pitch}|${body.volume}`;
        const data = await api("/api/voice/generate", {
          method: "POST",
          json: {
            messageId: numericKey(key), text: body.text, emotionType: emotion,
            emotionIntensity: sliderValue("intensity"),
            voiceProfile: {
              voiceName: body.voice_type, speed: body.speed, pitch: body.pitch,
              volume: Math.min(1, body.volume),
            },
          },
        });
        stop();
        await showResult(data.audioUrl, data.format, [
          (data.format || "mp3").toUpperCase(), formatSeconds(data.duration), formatBytes(data.fileSize),
          t(`pg.emotion_${data.emotionType}`),
          data.cached ? t("pg.cached") : t("pg.generatedIn", { seconds: data.generationTime }),
        ]);
        stats.lastTts = { ...data, url: data.audioUrl, format: data.format };
        stats.tts += 1;
      } else {
        const data = await ttsWithSession(body);
        stop();
        await showResult(data.audio_url, data.format, [
          data.format.toUpperCase(), formatSeconds(data.duration), formatBytes(data.size),
        ], { duration: data.duration, size: data.size });
        stats.lastTts = { ...data, url: data.audio_url };
        stats.tts += 1;
      }
    });
    setStatus(status, t("pg.done"), "success");
  } catch (err) {
    showError(err, status);
  } finally {
    stop();
  }
}

/** Synthesized clips are kept together in one session of the playground. */
async function ttsWithSession(body) {
  const sessionId = sessionStorage.getItem(SESSION_KEY);
  try {
    const data = await api("/api/tts", { method: "POST", json: { ...body, session_id: sessionId || undefined } });
    sessionStorage.setItem(SESSION_KEY, data.session_id);
    return data;
  } catch (err) {
    if (sessionId && err.status === 404) {
      sessionStorage.removeItem(SESSION_KEY);
      return ttsWithSession(body);
    }
    throw err;
  }
}

/** POST /api/tts/stream as WAV: the header gives the rate, the rest is PCM played as it comes. */
async function stream() {
  const status = $("#tts-status");
  const body = requestOrShow(status);
  if (!body) return;
  stopClip();
  $("#tts-audio").pause();
  const sessionId = sessionStorage.getItem(SESSION_KEY);
  const started = performance.now();
  const record = { firstAudioMs: null, bytes: 0, chunks: 0, sampleRate: null, messageId: null };
  stats.lastStream = record;
  try {
    await busy($("#tts-stream"), async () => {
      setStatus(status, t("pg.streamWaiting"));
      const response = await api("/api/tts/stream", {
        method: "POST", raw: true, json: { ...body, format: "wav", session_id: sessionId || undefined },
      });
      record.messageId = response.headers.get("X-Message-Id");
      const newSession = response.headers.get("X-Session-Id");
      if (newSession) sessionStorage.setItem(SESSION_KEY, newSession);
      const reader = response.body.getReader();
      let head = new Uint8Array(0);
      let format = null;
      const pcmParts = [];
      let lastDraw = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let bytes = value;
        if (!format) {
          const joined = new Uint8Array(head.byteLength + bytes.byteLength);
          joined.set(head);
          joined.set(bytes, head.byteLength);
          head = joined;
          format = parseWavHeader(head);
          if (!format) continue;
          record.sampleRate = format.sampleRate;
          streamPlayer.begin(format.sampleRate);
          bytes = head.subarray(format.dataOffset);
        }
        if (!bytes.byteLength) continue;
        if (record.firstAudioMs === null) record.firstAudioMs = Math.round(performance.now() - started);
        record.bytes += bytes.byteLength;
        record.chunks += 1;
        pcmParts.push(bytes.slice());
        streamPlayer.push(bytes);
        setStatus(status, t("pg.streaming", {
          size: formatBytes(record.bytes), ms: record.firstAudioMs,
          seconds: formatSeconds(record.bytes / 2 / format.sampleRate),
        }));
        if (performance.now() - lastDraw > 250) {
          lastDraw = performance.now();
          drawStreamed(pcmParts, format.sampleRate);
        }
      }
      streamPlayer.end();
      if (!format) throw new Error(t("pg.streamEmpty"));
      const all = drawStreamed(pcmParts, format.sampleRate);
      stats.streams += 1;
      // The complete stream, for replay and seeking; the live copy keeps playing meanwhile.
      $("#tts-output").hidden = false;
      if (outputUrl) URL.revokeObjectURL(outputUrl);
      outputUrl = URL.createObjectURL(wavBlob(all, format.sampleRate));
      $("#tts-audio").src = outputUrl;
      offerDownload(outputUrl, "wav");
      $("#tts-meta").textContent = [
        t("pg.streamedMeta", { ms: record.firstAudioMs }), formatSeconds(all.byteLength / 2 / format.sampleRate),
        formatBytes(all.byteLength), `${format.sampleRate} Hz`,
      ].join(" · ");
    });
    setStatus(status, t("pg.done"), "success");
  } catch (err) {
    streamPlayer.stop();
    showError(err, status);
  }
}

function drawStreamed(parts, rate) {
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const all = new Uint8Array(total - (total % 2));
  let offset = 0;
  for (const part of parts) {
    const take = Math.min(part.byteLength, all.byteLength - offset);
    all.set(part.subarray(0, take), offset);
    offset += take;
  }
  $("#tts-output").hidden = false;
  waveform.setSamples(pcm16ToFloat32(all), all.byteLength / 2 / rate);
  return all;
}

// ---- recognition -------------------------------------------------------------------------

function setSttSample(blob, name, seconds = null) {
  sttSample = blob ? { blob, name } : null;
  if (sttUrl) URL.revokeObjectURL(sttUrl);
  sttUrl = blob ? URL.createObjectURL(blob) : null;
  $("#stt-sample").hidden = !blob;
  if (blob) {
    $("#stt-audio").src = sttUrl;
    $("#stt-sample-label").textContent = seconds ? t("voices.recorded", { seconds: formatSeconds(seconds) }) : name;
  }
}

async function toggleSttRecording() {
  if (sttRecorder.recording) {
    const result = await sttRecorder.stop();
    if (result && result.seconds >= 0.5) setSttSample(result.blob, `recording.${result.format}`, result.seconds);
    else setStatus($("#stt-status"), t("rec.tooShort"), "error");
    return;
  }
  if (await sttRecorder.start()) setSttSample(null);
}

async function transcribe(event) {
  event.preventDefault();
  const status = $("#stt-status");
  const bar = progress($("#stt-progress"));
  setStatus(status, "");
  if (sttRecorder.recording) await toggleSttRecording();
  if (!sttSample) {
    setStatus(status, t("pg.needAudio"), "error");
    return;
  }
  const form = new FormData();
  form.append("file", sttSample.blob, sttSample.name);
  const language = $("#stt-language").value;
  if (language) form.append("language", language);
  // Word times and ready-made subtitles come with OpenAI's verbose_json shape.
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  const started = performance.now();
  let timer = 0;
  try {
    const data = await busy($("#stt-submit"), () => upload("/api/stt", form, {
      onProgress: (fraction) => {
        if (fraction < 1) {
          bar.show(t("pg.uploading", { percent: Math.round(fraction * 100) }), fraction);
          return;
        }
        clearInterval(timer);
        timer = setInterval(() => bar.show(t("pg.recognising", {
          seconds: ((performance.now() - started) / 1000).toFixed(1),
        }), null), 200);
      },
    }));
    stats.stt += 1;
    stats.lastStt = data;
    renderTranscript(data, (performance.now() - started) / 1000);
    setStatus(status, t("pg.done"), "success");
  } catch (err) {
    showError(err, status);
  } finally {
    clearInterval(timer);
    bar.hide();
  }
}

function renderTranscript(data, seconds) {
  $("#stt-output").hidden = false;
  $("#stt-transcript").textContent = data.transcription || t("pg.nothingHeard");
  $("#stt-meta").textContent = [
    data.language ? t("pg.detected", { language: languageName(data.language) }) : null,
    t("pg.audioLength", { seconds: formatSeconds(data.duration) }),
    t("pg.tookSeconds", { seconds: seconds.toFixed(1) }),
  ].filter(Boolean).join(" · ");
  const list = clear($("#stt-segments"));
  for (const segment of data.segments || []) {
    list.append(h("li", {},
      h("button", {
        type: "button", class: "segment",
        title: t("pg.playFrom"),
        onclick: () => playFrom(segment.start),
      },
      h("span", { class: "time", text: `${segment.start.toFixed(2)}–${segment.end.toFixed(2)} s` }),
      h("span", { class: "segment-text", text: segment.text })),
      h("div", { class: "words" }, (segment.words || []).map((word) => h("button", {
        type: "button", class: "word", title: `${word.start.toFixed(2)}–${word.end.toFixed(2)} s`,
        dataset: { start: String(word.start), end: String(word.end) },
        onclick: () => playFrom(word.start),
      }, h("span", { class: "word-text", text: word.word }),
      h("span", { class: "time", text: word.start.toFixed(2) }))))));
  }
  offerSubtitles(data.subtitles || null);
}

function playFrom(seconds) {
  const audio = $("#stt-audio");
  audio.currentTime = seconds;
  audio.play().catch(() => {});
}

/** Download links for the transcript as subtitles (made by the server). */
function offerSubtitles(subtitles) {
  subtitleUrls.forEach((url) => URL.revokeObjectURL(url));
  subtitleUrls = [];
  const box = clear($("#stt-downloads"));
  box.hidden = !subtitles || !subtitles.srt;
  if (box.hidden) return;
  for (const [format, type] of [["srt", "application/x-subrip"], ["vtt", "text/vtt"]]) {
    const url = URL.createObjectURL(new Blob([subtitles[format]], { type }));
    subtitleUrls.push(url);
    box.append(h("a", {
      class: "button small", id: `stt-download-${format}`, href: url,
      download: `transcript.${format}`, text: t(`pg.download.${format}`),
    }));
  }
}

// ---- screen ------------------------------------------------------------------------------

export function init() {
  waveform = new WaveformView($("#tts-wave"), $("#tts-audio"));
  $("#tts-form").addEventListener("submit", synthesize);
  $("#tts-stream").addEventListener("click", stream);
  $("#tts-text").addEventListener("input", () => {
    textTouched = true;
    checkScript();
  });
  $("#tts-voice").addEventListener("change", checkScript);
  for (const name of ["speed", "pitch", "volume", "intensity"]) {
    $(`#tts-${name}`).addEventListener("input", syncOutputs);
  }
  $("#tts-emotion").addEventListener("change", syncOutputs);
  $("#stt-form").addEventListener("submit", transcribe);
  $("#stt-record").addEventListener("click", () => toggleSttRecording());
  $("#stt-record").disabled = !Recorder.supported();
  $("#stt-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) setSttSample(file, file.name);
  });
  syncOutputs();
  store.onInvalidate("voiceTypes", () => {
    if (!$("#screen-playground").hidden) loadVoices(true).catch(showError);
  });
  onLangChange(async () => {
    if (!$("#screen-playground").hidden) await loadVoices().catch(showError);
    applyDefaults();
    syncOutputs();
  });
}

export async function show() {
  try {
    await loadVoices();
    applyDefaults();
  } catch (err) {
    showError(err);
  }
  waveform.draw();
}

export function hide() {
  stopClip();
  streamPlayer.stop();
  $("#tts-audio").pause();
  $("#stt-audio").pause();
}

