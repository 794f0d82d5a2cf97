"""Flask-Admin views: a thin layer over the services in `stoloto`."""
from pathlib import Path

import flask_admin
from flask import current_app, g, send_from_directory
from flask_admin import Admin, babel as admin_babel
from flask_admin.theme import Bootstrap4Theme
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from stoloto import clock, plural, settings as stoloto_settings
from stoloto.audit import result_label
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store, User
from stoloto.services import certificates
from stoloto.web_security import csp_nonce

from .audit import AuditView
from .auth import AuthView
from .contracts import ContractView
from .formatters import local_time
from .guard import refuse_unstorable_text
from .help import HelpView
from .home import HomeView
from .password import PasswordView, send_to_password_change
from .registers import CashRegisterView
from .settings import SettingsView
from .stand import StandView
from .stores import StoreView
from .users import UserView

ADMINISTRATION = "Администрирование"
TRANSLATIONS = str(Path(__file__).resolve().parent.parent / "translations")
FLASK_ADMIN_TEMPLATES = str(Path(flask_admin.__file__).resolve().parent / "templates" / "bootstrap4")


def _use_our_wording() -> None:
    # Flask-Babel merges catalogues in order and the later one wins, so ours goes last.
    directories = admin_babel.domain._translation_directories
    if TRANSLATIONS not in directories:
        admin_babel.domain._translation_directories = [*directories, TRANSLATIONS]


def _reach_flask_admins_own_templates(app) -> None:
    # templates/admin/ replaces a few of Flask-Admin's macro files (no inline scripts under the CSP);
    # each imports the macros it leaves alone from the original, reachable as flask_admin/admin/….
    app.jinja_loader = ChoiceLoader([app.jinja_loader, PrefixLoader({"flask_admin": FileSystemLoader(
        FLASK_ADMIN_TEMPLATES)})])


def _favicon():
    # Browsers ask for /favicon.ico whatever the page links: give them the SVG icon every page links to.
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml")


def certificate_attention():
    """services/certificates.needing_attention, asked once per page."""
    if "sis_certificate_attention" not in g:
        g.sis_certificate_attention = certificates.needing_attention()
    return g.sis_certificate_attention


def register_admin(app) -> Admin:
    _use_our_wording()
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    app.add_template_filter(local_time)  # templates show stored UTC moments in SIS_TIMEZONE
    app.add_template_filter(result_label, "journal_result")  # «успешно», «предупреждение», «ошибка»
    app.add_template_filter(plural.stores, "stores_count")  # «40 магазинов»
    app.add_template_global(clock.label, "zone_label")
    # sis_base.html warns on every page while no Stoloto URL is set (the setting, or STOLOTO_URL).
    app.add_template_global(stoloto_settings.stoloto_configured, "stoloto_configured")
    # sis_base.html names on every page the contracts whose certificate ends soon or has ended.
    app.add_template_global(certificate_attention, "certificate_attention")
    _reach_flask_admins_own_templates(app)
    app.before_request(refuse_unstorable_text)
    app.before_request(send_to_password_change)
    admin = Admin(app, name="СИ Столото", url="/",
                  index_view=HomeView(name="Обзор", url="/", endpoint="home"),
                  theme=Bootstrap4Theme(base_template="sis_base.html", fluid=True), csp_nonce_generator=csp_nonce)
    admin.add_view(ContractView(Contract, db, name="Договоры", category=ADMINISTRATION,
                                endpoint="contracts", url="/contracts"))
    admin.add_view(StoreView(Store, db, name="Магазины", endpoint="stores", url="/stores"))
    admin.add_view(CashRegisterView(CashRegister, db, name="Кассы", endpoint="registers", url="/registers"))
    admin.add_view(UserView(User, db, name="Пользователи", category=ADMINISTRATION,
                            endpoint="users", url="/users"))
    admin.add_view(AuditView(AuditEvent, db, name="Журнал", endpoint="journal", url="/journal"))
    admin.add_view(SettingsView(name="Настройки", endpoint="settings", url="/settings"))
    admin.add_view(StandView(name="Тестовый стенд", endpoint="stand", url="/stand"))
    admin.add_view(HelpView(name="Справка", endpoint="help", url="/help"))
    admin.add_view(PasswordView(name="Сменить пароль", endpoint="password", url="/password"))
    admin.add_view(AuthView(name="Вход", endpoint="auth", url="/auth"))
    return admin
