// Audio in the browser: one shared AudioContext, a gapless player for streamed 16-bit PCM,
// a microphone recorder (MediaRecorder) with a level meter, WAV framing, and a waveform
// view that follows an <audio> element's progress.

let sharedContext = null;

export function audioContext() {
  if (!sharedContext) {
    const Context = window.AudioContext || window.webkitAudioContext;
    sharedContext = new Context({ latencyHint: "interactive" });
  }
  if (sharedContext.state === "suspended") sharedContext.resume().catch(() => {});
  return sharedContext;
}

/** The shared AudioContext's clock in seconds (null before any audio was set up). */
export function audioTime() {
  return sharedContext ? sharedContext.currentTime : null;
}

export function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Little-endian signed 16-bit samples (an even number of bytes) as floats in [-1, 1). */
export function pcm16ToFloat32(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const samples = new Float32Array(bytes.byteLength >> 1);
  for (let i = 0; i < samples.length; i += 1) samples[i] = view.getInt16(i * 2, true) / 32768;
  return samples;
}

/** A WAV file around raw mono 16-bit PCM, so an <audio> element can play it. */
export function wavBlob(pcmBytes, sampleRate) {
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, value) => [...value].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + pcmBytes.byteLength, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true);
  header.setUint16(22, 1, true);
  header.setUint32(24, sampleRate, true);
  header.setUint32(28, sampleRate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, pcmBytes.byteLength, true);
  return new Blob([header.buffer, pcmBytes], { type: "audio/wav" });
}

/**
 * The format of a WAV header at the start of `bytes`: {sampleRate, channels, bits, dataOffset},
 * or null while more bytes are needed. Streamed WAV headers carry a placeholder length.
 */
export function parseWavHeader(bytes) {
  if (bytes.byteLength < 12) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (offset) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV stream");
  let offset = 12;
  let format = null;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(offset);
    const size = view.getUint32(offset + 4, true);
    if (id === "fmt ") {
      if (offset + 8 + 16 > bytes.byteLength) return null;
      format = {
        channels: view.getUint16(offset + 10, true),
        sampleRate: view.getUint32(offset + 12, true),
        bits: view.getUint16(offset + 22, true),
      };
    } else if (id === "data") {
      return format ? { ...format, dataOffset: offset + 8 } : null;
    }
    offset += 8 + size + (size % 2);
  }
  return null;
}

/**
 * Plays a stream of raw 16-bit little-endian mono PCM chunks without gaps: each chunk becomes
 * an AudioBuffer scheduled to start exactly when the previous one ends. Chunks carry a
 * sequence number; one that arrives early waits until those before it have been scheduled.
 */
export class PcmStreamPlayer {
  constructor() {
    this.stats = {
      streams: 0, chunksReceived: 0, chunksScheduled: 0, bytesReceived: 0,
      secondsScheduled: 0, underruns: 0, maxGap: 0, outOfOrder: 0,
      timeline: [], // the current stream: {seq, at, start, end, late} per scheduled chunk
    };
    this.sources = new Set();
    this.onIdle = null;
    this.active = false;
    this.reset();
  }

  reset() {
    this.sampleRate = 0;
    this.nextSeq = 0;
    this.waiting = new Map();
    this.carry = null;
    this.nextTime = 0;
    this.streamChunks = 0;
  }

  /** The node every chunk plays through (an analyser, for the level display). */
  output() {
    const context = audioContext();
    if (!this.analyser || this.analyser.context !== context) {
      this.analyser = context.createAnalyser();
      this.analyser.fftSize = 512;
      this.analyser.connect(context.destination);
    }
    return this.analyser;
  }

  /** Start a new stream (cutting off whatever is still playing). */
  begin(sampleRate) {
    this.stop();
    audioContext();
    this.sampleRate = sampleRate || 22050;
    this.active = true;
    this.stats.streams += 1;
    this.stats.timeline = [];
  }

  /** One chunk of bytes; `seq` orders chunks within the stream (null: in arrival order). */
  push(bytes, seq = null) {
    if (!this.active) return false;
    this.stats.chunksReceived += 1;
    this.stats.bytesReceived += bytes.byteLength;
    if (seq === null || seq === undefined) {
      this.schedule(bytes, this.stats.timeline.length);
      return true;
    }
    if (seq < this.nextSeq || this.waiting.has(seq)) return false;
    if (seq !== this.nextSeq) this.stats.outOfOrder += 1;
    this.waiting.set(seq, bytes);
    while (this.waiting.has(this.nextSeq)) {
      const next = this.waiting.get(this.nextSeq);
      this.waiting.delete(this.nextSeq);
      this.schedule(next, this.nextSeq);
      this.nextSeq += 1;
    }
    return true;
  }

  schedule(bytes, seq) {
    let data = bytes;
    if (this.carry) {
      const joined = new Uint8Array(this.carry.byteLength + data.byteLength);
      joined.set(this.carry);
      joined.set(data, this.carry.byteLength);
      data = joined;
      this.carry = null;
    }
    if (data.byteLength % 2) {
      this.carry = data.slice(data.byteLength - 1);
      data = data.subarray(0, data.byteLength - 1);
    }
    if (!data.byteLength) return;
    const context = audioContext();
    const samples = pcm16ToFloat32(data);
    const buffer = context.createBuffer(1, samples.length, this.sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output());
    const now = context.currentTime;
    let startAt = this.nextTime;
    let late = false;
    if (this.streamChunks === 0) {
      startAt = now + 0.08;
    } else if (startAt < now + 0.005) {
      // The stream fell behind the clock: the next chunk starts as soon as possible.
      late = true;
      this.stats.underruns += 1;
      this.stats.maxGap = Math.max(this.stats.maxGap, now + 0.02 - startAt);
      startAt = now + 0.02;
    }
    source.start(startAt);
    this.nextTime = startAt + buffer.duration;
    this.streamChunks += 1;
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      if (!this.sources.size && this.onIdle) this.onIdle();
    };
    this.stats.chunksScheduled += 1;
    this.stats.secondsScheduled += buffer.duration;
    if (this.stats.timeline.length < 5000) {
      this.stats.timeline.push({ seq, at: now, start: startAt, end: this.nextTime, late });
    }
  }

  /** No more chunks for this stream; what is scheduled plays out. */
  end() {
    this.active = false;
    this.waiting.clear();
    this.carry = null;
  }

  /** Silence now. */
  stop() {
    if (this.paused) this.resume();
    this.active = false;
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.sources.clear();
    this.reset();
  }

  /** Hold the sound where it is (a caller cut in: it may be only a cough). */
  pause() {
    if (sharedContext && sharedContext.state === "running") sharedContext.suspend().catch(() => {});
    this.paused = true;
  }

  /** Go on from where `pause` held it. */
  resume() {
    this.paused = false;
    if (sharedContext && sharedContext.state === "suspended") sharedContext.resume().catch(() => {});
  }

  /** Seconds of the current stream played so far (the clock stands still while paused). */
  get played() {
    if (!sharedContext) return 0;
    const now = sharedContext.currentTime;
    return this.stats.timeline.reduce(
      (sum, chunk) => sum + Math.max(0, Math.min(now, chunk.end) - chunk.start), 0);
  }

  get playing() { return this.sources.size > 0; }

  /** Seconds of scheduled audio not yet played. */
  get remaining() {
    return sharedContext ? Math.max(0, this.nextTime - sharedContext.currentTime) : 0;
  }

  /** Output level 0..1 right now. */
  level() {
    if (!this.analyser) return 0;
    return rms(this.analyser);
  }
}

function rms(analyser) {
  const data = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(data);
  let sum = 0;
  for (const value of data) sum += value * value;
  return Math.min(1, Math.sqrt(sum / data.length) * 4);
}

const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

/** The file extension / `format` the API expects for a recorded blob's MIME type. */
export function formatOf(mime) {
  const type = (mime || "").toLowerCase();
  if (type.includes("webm")) return "webm";
  if (type.includes("ogg")) return "ogg";
  if (type.includes("mp4") || type.includes("m4a") || type.includes("aac")) return "m4a";
  if (type.includes("wav")) return "wav";
  if (type.includes("mpeg") || type.includes("mp3")) return "mp3";
  return "webm";
}

/** Records the microphone with MediaRecorder; reports elapsed seconds and input level. */
export class Recorder {
  constructor({ maxSeconds = 60, onTick = null } = {}) {
    this.maxSeconds = maxSeconds;
    this.onTick = onTick;
    this.recorder = null;
  }

  static supported() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  get recording() { return Boolean(this.recorder && this.recorder.state === "recording"); }

  get elapsed() { return this.startedAt ? (performance.now() - this.startedAt) / 1000 : 0; }

  async start() {
    if (!Recorder.supported()) throw new Error("MediaRecorder unsupported");
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
    });
    const type = RECORDING_TYPES.find((candidate) => MediaRecorder.isTypeSupported(candidate)) || "";
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : undefined);
    const parts = [];
    this.recorder.ondataavailable = (event) => {
      if (event.data && event.data.size) parts.push(event.data);
    };
    this.finished = new Promise((resolve) => {
      this.recorder.onstop = () => {
        resolve(new Blob(parts, { type: this.recorder.mimeType || type || "audio/webm" }));
      };
    });
    const context = audioContext();
    this.input = context.createMediaStreamSource(this.stream);
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.input.connect(this.analyser);
    this.recorder.start(250);
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      const seconds = this.elapsed;
      if (this.onTick) this.onTick(seconds, rms(this.analyser));
      if (seconds >= this.maxSeconds) this.stop();
    }, 100);
  }

  /** Stop; resolves to {blob, seconds, format} (null when nothing was recording). */
  async stop() {
    if (!this.recorder) return null;
    const seconds = this.elapsed;
    clearInterval(this.timer);
    if (this.recorder.state !== "inactive") this.recorder.stop();
    const blob = await this.finished;
    this.release();
    return { blob, seconds, format: formatOf(blob.type) };
  }

  release() {
    clearInterval(this.timer);
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.input) this.input.disconnect();
    this.stream = null;
    this.input = null;
    this.recorder = null;
    this.startedAt = 0;
  }
}

/** Peaks of an <audio> element's sound on a canvas, with the played part highlighted. */
export class WaveformView {
  constructor(canvas, audio) {
    this.canvas = canvas;
    this.audio = audio;
    this.peaks = null;
    this.duration = 0;
    this.frame = 0;
    const redraw = () => this.draw();
    ["timeupdate", "seeked", "loadedmetadata", "pause", "ended"].forEach((name) => {
      audio.addEventListener(name, redraw);
    });
    audio.addEventListener("play", () => this.animate());
    canvas.addEventListener("click", (event) => {
      const duration = this.audio.duration || this.duration;
      if (!duration || !Number.isFinite(duration)) return;
      const box = canvas.getBoundingClientRect();
      this.audio.currentTime = ((event.clientX - box.left) / box.width) * duration;
    });
    window.addEventListener("resize", redraw);
  }

  animate() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.draw();
      if (!this.audio.paused) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  clear() {
    this.peaks = null;
    this.duration = 0;
    this.draw();
  }

  /** Decode encoded audio (MP3, WAV, Opus…) and show its peaks. */
  async loadEncoded(arrayBuffer) {
    const decoded = await audioContext().decodeAudioData(arrayBuffer.slice(0));
    this.setSamples(decoded.getChannelData(0), decoded.duration);
    return decoded;
  }

  setSamples(samples, duration) {
    const buckets = 400;
    const size = Math.max(1, Math.floor(samples.length / buckets));
    const peaks = new Float32Array(Math.min(buckets, Math.ceil(samples.length / size)));
    for (let i = 0; i < peaks.length; i += 1) {
      let peak = 0;
      const end = Math.min(samples.length, (i + 1) * size);
      for (let j = i * size; j < end; j += 1) peak = Math.max(peak, Math.abs(samples[j]));
      peaks[i] = peak;
    }
    this.peaks = peaks;
    this.duration = duration;
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, width, height);
    const styles = getComputedStyle(canvas);
    const played = styles.getPropertyValue("--wave-played").trim() || "#2563eb";
    const rest = styles.getPropertyValue("--wave-rest").trim() || "#cbd5e1";
    const duration = this.audio.duration && Number.isFinite(this.audio.duration)
      ? this.audio.duration : this.duration;
    const fraction = duration ? Math.min(1, this.audio.currentTime / duration) : 0;
    const middle = height / 2;
    if (!this.peaks) {
      g.fillStyle = rest;
      g.fillRect(0, middle - ratio / 2, width, ratio);
      g.fillStyle = played;
      g.fillRect(0, middle - ratio, width * fraction, 2 * ratio);
      return;
    }
    const count = this.peaks.length;
    const bar = width / count;
    const top = Math.max(...this.peaks) || 1;
    for (let i = 0; i < count; i += 1) {
      const amplitude = Math.max(ratio, (this.peaks[i] / top) * (height * 0.9) / 2);
      g.fillStyle = i / count < fraction ? played : rest;
      g.fillRect(i * bar, middle - amplitude, Math.max(ratio, bar - ratio), amplitude * 2);
    }
    g.fillStyle = played;
    g.fillRect(width * fraction - ratio / 2, 0, ratio, height);
  }
}
