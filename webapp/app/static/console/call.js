// A hands-free call's microphone: getUserMedia with the browser's echo cancellation on
// (so the character's voice from the speakers does not interrupt itself), an AudioWorklet
// in a 16 kHz AudioContext, and 16-bit PCM handed out in 40 ms pieces for `call_audio`.

const RATE = 16000;
const PIECE_SAMPLES = 640; // 40 ms at 16 kHz

// The worklet only copies the microphone's samples out; everything else happens here.
const WORKLET = `
class CallCapture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("call-capture", CallCapture);
`;

export class CallMicrophone {
  /** onPiece(ArrayBuffer of 16-bit PCM), onLevel(0..1). */
  constructor({ onPiece, onLevel }) {
    this.onPiece = onPiece;
    this.onLevel = onLevel || (() => {});
    this.context = null;
    this.stream = null;
    this.node = null;
    this.pending = new Int16Array(PIECE_SAMPLES);
    this.filled = 0;
    this.sent = 0;
  }

  static supported() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      && window.AudioWorkletNode);
  }

  get sampleRate() { return this.context ? this.context.sampleRate : RATE; }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    this.context = new AudioContext({ sampleRate: RATE });
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
    try {
      await this.context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "call-capture");
    this.node.port.onmessage = (event) => this.take(event.data);
    source.connect(this.node);
  }

  take(samples) {
    let peak = 0;
    for (let i = 0; i < samples.length; i += 1) {
      const value = Math.max(-1, Math.min(1, samples[i]));
      peak = Math.max(peak, Math.abs(value));
      this.pending[this.filled] = value < 0 ? value * 0x8000 : value * 0x7fff;
      this.filled += 1;
      if (this.filled === PIECE_SAMPLES) {
        this.onPiece(this.pending.buffer.slice(0));
        this.sent += 1;
        this.filled = 0;
      }
    }
    this.onLevel(peak);
  }

  stop() {
    if (this.node) this.node.port.onmessage = null;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close();
    this.node = null;
    this.stream = null;
    this.context = null;
  }
}
