"""`make run`: serve SIS on HOST:PORT, with the built-in test stands when no outside URLs are set."""
import argparse
import os

from .config import instance_path

MAX_DEMO_CERT_MINUTES = 365 * 24 * 60


def start_stands(stoloto_port: int, set_port: int) -> list[str]:
    """Starts a stand for every outside service without a URL and points SIS at it via the environment."""
    started = []
    if not os.environ.get("STOLOTO_URL"):
        from .stands.stoloto_stand import StolotoStand
        stand = StolotoStand(instance_path() / "stands" / "stoloto", port=stoloto_port,
                             **_certificate_validity()).start()
        os.environ.update(STOLOTO_URL=stand.url, STOLOTO_CA_BUNDLE=stand.ca_path,
                          SIS_STOLOTO_STAND_URL=stand.url, SIS_STOLOTO_STAND_CA=stand.ca_path)
        started.append(f"тестовый стенд Столото: {stand.url} (CA {stand.ca_path})")
    if not os.environ.get("SET_CENTRUM_URL"):
        from .stands.setcentrum_stand import SetCentrumStand
        set_stand = SetCentrumStand(port=set_port).start()
        os.environ.update(SET_CENTRUM_URL=set_stand.url, SIS_SET_STAND_URL=set_stand.url)
        started.append(f"тестовый стенд SET Centrum: {set_stand.url}")
    return started


def _certificate_validity() -> dict:
    """SIS_DEMO_CERT_MINUTES: the stand issues certificates valid this many minutes, so that the demo shows a
    renewal (the job renews at half-life) within a minute or two; unset, a year as Stoloto does."""
    text = os.environ.get("SIS_DEMO_CERT_MINUTES", "").strip()
    if not text:
        return {}
    if not text.isdigit() or not 1 <= int(text) <= MAX_DEMO_CERT_MINUTES:
        raise SystemExit(f"Переменная окружения SIS_DEMO_CERT_MINUTES: укажите целое число минут от 1 до "
                         f"{MAX_DEMO_CERT_MINUTES}.")
    return {"cert_validity_minutes": int(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Запуск СИ Столото")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--stoloto-stand-port", type=int, default=int(os.environ.get("STOLOTO_STAND_PORT", "5443")))
    parser.add_argument("--set-stand-port", type=int, default=int(os.environ.get("SET_STAND_PORT", "5081")))
    args = parser.parse_args()
    # Logging is set up by create_app (stoloto/logs.py), the same as under `flask run` and gunicorn.
    for line in start_stands(args.stoloto_stand_port, args.set_stand_port):
        print(f" * {line}", flush=True)
    from app import create_app_or_exit
    app = create_app_or_exit()
    print(f" * СИ Столото: http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
