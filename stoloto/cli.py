"""Flask CLI commands: `flask --app app users create …` and friends."""
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from . import audit
from .errors import SisError
from .models import ROLE_LABELS
from .services import users


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_group)
    app.cli.add_command(terminals_group)
    app.cli.add_command(certificates_group)
    app.cli.add_command(registers_group)
    app.cli.add_command(stores_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(alerts_group)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


@click.group("users", cls=AppGroup, help="Пользователи СИ Столото.")
def users_group() -> None:
    pass


@users_group.command("create", help="Создать пользователя.")
@click.argument("login")
# Not click.Choice: its refusal is English; the service's names the roles in Russian.
@click.option("--role", required=True, metavar="|".join(ROLE_LABELS),
              help="Роль: " + ", ".join(f"{role} — «{label}»" for role, label in ROLE_LABELS.items()) + ".")
@click.option("--password-stdin", is_flag=True, help="Прочитать пароль из стандартного ввода.")
def create_user_command(login: str, role: str, password_stdin: bool) -> None:
    if role not in ROLE_LABELS:  # before the password is asked for
        raise click.ClickException(users.BAD_ROLE)
    password = _read_password(password_stdin)
    with _refusal_as_error(_error_text):
        users.create_user(login, role, password, actor=audit.CLI_ACTOR)
    click.echo(f"Пользователь {login} создан, роль «{ROLE_LABELS[role]}».")


@users_group.command("set-password", help="Задать пользователю новый пароль; его сеансы завершаются.")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Прочитать пароль из стандартного ввода.")
def set_password_command(login: str, password_stdin: bool) -> None:
    password = _read_password(password_stdin)
    with _refusal_as_error(_error_text):
        users.set_password(login, password, actor=audit.CLI_ACTOR)
    click.echo(f"Пароль пользователя {login} изменён, его сеансы завершены.")


@users_group.command("disable", help="Отключить пользователя; его сеансы завершаются.")
@click.argument("login")
def disable_command(login: str) -> None:
    with _refusal_as_error(_error_text):
        users.deactivate(login, actor=audit.CLI_ACTOR)
    click.echo(f"Пользователь {login} отключён, его сеансы завершены.")


@users_group.command("enable", help="Снова разрешить пользователю вход.")
@click.argument("login")
def enable_command(login: str) -> None:
    with _refusal_as_error(_error_text):
        users.activate(login, actor=audit.CLI_ACTOR)
    click.echo(f"Пользователь {login} включён.")


@users_group.command("list", help="Список пользователей: логин, роль, активен, создан (UTC).")
def list_command() -> None:
    rows = [("Логин", "Роль", "Активен", "Создан (UTC)")]
    rows += [(user.login, ROLE_LABELS.get(user.role, user.role), "да" if user.active else "нет",
              user.created_at.strftime("%d.%m.%Y %H:%M")) for user in users.all_users()]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


@contextmanager
def _refusal_as_error(text: Callable[[SisError], str] = str) -> Iterator[None]:
    """A service's refusal ends the command with its Russian text and exit code 1, not a traceback."""
    try:
        yield
    except SisError as error:
        raise click.ClickException(text(error)) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Пароль", hide_input=True, confirmation_prompt=True)


def _error_text(error: SisError) -> str:
    return "; ".join(error.fields.values()) or error.message


@click.group("terminals", cls=AppGroup, help="Номера терминалов Столото.")
def terminals_group() -> None:
    pass


@terminals_group.command("fetch", help="Один раз запросить пакеты терминалов для всех договоров, которым они нужны.")
def fetch_terminals_command() -> None:
    from .services import terminals
    report = terminals.fetch_due_batches(actor=audit.CLI_ACTOR)
    click.echo(f"Пакеты терминалов: {report}")
    if report.errors:
        sys.exit(1)


@click.group("certificates", cls=AppGroup, help="Сертификаты договоров, выданные Столото.")
def certificates_group() -> None:
    pass


@certificates_group.command("renew", help="Один раз обновить сертификаты, которым пора обновиться, как фоновое "
                                          "задание, или сертификат одного договора (--contract НОМЕР).")
@click.option("--contract", "number", help="Номер договора: обновить его сертификат сейчас.")
def renew_certificates_command(number: str | None) -> None:
    from .services import certificates
    if number is not None:
        with _refusal_as_error():
            renewal = certificates.renew_by_number(number, actor=audit.CLI_ACTOR)
        click.echo(f"Сертификат договора № {renewal.contract.number} обновлён.")
        return
    report = certificates.renew_due(actor=audit.CLI_ACTOR)
    click.echo(f"Обновлено сертификатов: {len(report.renewed)}.")
    for contract_number, error in report.errors.items():
        click.echo(f"  {contract_number}: {error}")
    if report.errors:
        sys.exit(1)


@click.group("registers", cls=AppGroup, help="Кассы.")
def registers_group() -> None:
    pass


@registers_group.command("finish", help="Один раз зарегистрировать ожидающие кассы, как фоновое задание.")
def finish_registers_command() -> None:
    from .register_lifecycle import REASON_LABELS
    from .services import registers
    report = registers.finish_pending_report()
    waiting = registers.waiting_by_reason()
    click.echo(f"Зарегистрировано касс: {report.registered}.")
    click.echo(f"Ожидают регистрации: {sum(waiting.values())}.")
    for reason, count in waiting.items():
        click.echo(f"  {REASON_LABELS[reason]}: {count}")


@click.group("alerts", cls=AppGroup, help="Уведомления.")
def alerts_group() -> None:
    pass


@alerts_group.command("check", help="Один раз проверить условия уведомлений и отправить то, что пора, "
                                    "как фоновое задание.")
def check_alerts_command() -> None:
    from .services import alerts
    report = alerts.run()
    for title in report.opened:
        click.echo(f"Начало: {title}")
    for title in report.resolved:
        click.echo(f"Завершение: {title}")
    click.echo(f"Отправлено уведомлений: {report.sent}, не доставлено: {report.failed}.")
    open_now = alerts.open_episodes()
    click.echo(f"Действуют уведомлений: {len(open_now)}.")
    for episode in open_now:
        click.echo(f"  {episode.title}")


@click.group("stores", cls=AppGroup, help="Магазины.")
def stores_group() -> None:
    pass


@stores_group.command("import", help="Загрузить из SET Centrum магазины, которых ещё нет в справочнике.")
def import_stores_command() -> None:
    from .services import stores
    with _refusal_as_error():
        added = stores.import_from_set(actor=audit.CLI_ACTOR)
    click.echo(stores.loaded_message(added))


@click.group("keys", cls=AppGroup, help="Ключ шифрования закрытых ключей договоров и токена API касс.")
def keys_group() -> None:
    pass


@keys_group.command("rotate", help="Создать новый ключ шифрования и перешифровать им все закрытые ключи "
                                   "договоров и токен API касс.")
def rotate_keys_command() -> None:
    from .services import keys
    with _refusal_as_error():
        rotation = keys.rotate(actor=audit.CLI_ACTOR)
    click.echo(f"Перешифровано ключей: {rotation.private_keys}")
    if rotation.secret_settings:
        click.echo("Токен API касс перешифрован.")
    if rotation.key_file:
        click.echo(f"Новый ключ шифрования записан в {rotation.key_file}; прежний больше не действует.")
    else:
        click.echo("Ключ шифрования задан переменной окружения. Задайте новое значение и перезапустите СИ Столото:\n"
                   f"SIS_KEY_ENCRYPTION_KEY={rotation.new_key}\n"
                   "Прежнее значение больше ничего не расшифровывает.")


@click.command("backup", help="Резервная копия работающего СИ Столото: база данных, ключ сессий и ключ шифрования "
                              "ключей в одном архиве (tar.gz, права 0600).")
@click.argument("file", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(file: str) -> None:
    from .services import backup
    with _refusal_as_error():
        made = backup.backup(file, actor=audit.CLI_ACTOR)
    manifest = made.manifest
    click.echo(f"Резервная копия записана в {made.path}: {backup.describe_counts(manifest['counts'])}; "
               f"миграция {manifest['migration']}.")
    if manifest["secret_key"] == "environment":
        click.echo("SECRET_KEY задан переменной окружения и в копию не вошёл.")
    click.echo("В копии ключ шифрования ключей: храните её так же надёжно, как сам ключ.")


@click.command("restore", help="Восстановить СИ Столото из резервной копии в настроенную пустую базу и папку instance.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Заменить содержимое непустой базы.")
@with_appcontext
def restore_command(file: str, force: bool) -> None:
    from .services import backup
    with _refusal_as_error():
        restored = backup.restore(file, actor=audit.CLI_ACTOR, force=force)
    manifest = restored.manifest
    click.echo(f"Восстановлена копия от {manifest['created_at']} "
               f"(версия СИ Столото {manifest['sis_version'] or 'неизвестна'}, миграция {manifest['migration']}): "
               f"{backup.describe_counts(restored.counts)} — как в манифесте.")
    click.echo(f"Закрытых ключей договоров расшифровано: {restored.private_keys}.")
    if restored.key_file:
        click.echo(f"Ключ шифрования ключей записан в {restored.key_file}.")
    else:
        click.echo("Ключ шифрования ключей задан переменной SIS_KEY_ENCRYPTION_KEY и совпадает с ключом копии.")
    if restored.secret_key_file:
        click.echo(f"Ключ сессий записан в {restored.secret_key_file}.")
    if restored.needs_upgrade:
        click.echo("Копия сделана более ранней версией СИ Столото: выполните «flask --app app db upgrade».")
