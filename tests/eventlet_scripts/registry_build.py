"""Under eventlet: two green threads ask the engine registry for an engine that is not
built yet, and building it yields to the event loop (as importing an SDK or starting a
helper process may). Both must get the same engine; before, the second one blocked the
whole loop on the registry's real lock, held by the first while it was suspended. Prints
JSON."""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

from webapp.app.providers import registry  # noqa: E402


class YieldingEngine:
    """An engine whose constructor lets other green threads run."""

    built = 0

    def __init__(self, config: object) -> None:
        eventlet.sleep(0.2)
        YieldingEngine.built += 1

    def is_configured(self) -> bool:
        return True


def main() -> None:
    module = types.ModuleType("yielding_engine")
    module.YieldingEngine = YieldingEngine  # type: ignore[attr-defined]
    sys.modules["yielding_engine"] = module
    registry.ENGINES["llm"]["yielding"] = "yielding_engine:YieldingEngine"
    engines = registry.ProviderRegistry({})
    started = time.monotonic()
    first = eventlet.spawn(engines.llm, "yielding")
    second = eventlet.spawn(engines.llm, "yielding")
    with eventlet.Timeout(5, False):
        got = [first.wait(), second.wait()]
        print(json.dumps({"done": True, "same": got[0] is got[1],
                          "built": YieldingEngine.built,
                          "seconds": round(time.monotonic() - started, 3)}))
        return
    print(json.dumps({"done": False}))


if __name__ == "__main__":
    main()
