"""`make run`: serve SIS on HOST:PORT (the test stands start beside it when no URLs are set)."""
import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description="Запуск СИ Столото")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args()

    from app import create_app
    app = create_app()
    print(f" * СИ Столото: http://{args.host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
