"""crm_core.access: the roles file, the role of an e-mail address (deny by default) and the permission table."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core import access
from crm_core.access import Role

EXAMPLE = Path(__file__).parent.parent / ".streamlit" / "roles.example.toml"

ROLES_TOML = """
[users]
"Ana@Example.com" = "admin"
"vic@example.com" = "Viewer"      # role names in any case
"carl@partner.org" = "analyst"

[domains]
"example.com" = "viewer"
"@analytics.example.net" = "analyst"   # a leading @ is allowed
"""


@pytest.fixture
def roles(tmp_path) -> access.Roles:
    path = tmp_path / "roles.toml"
    path.write_text(ROLES_TOML, encoding="utf-8")
    return access.load_roles(path)


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "roles.toml"
    path.write_text(text, encoding="utf-8")
    return path


class TestLoadRoles:
    def test_users_and_domains_are_lower_cased(self, roles, tmp_path):
        assert dict(roles.users) == {"ana@example.com": Role.ADMIN, "vic@example.com": Role.VIEWER,
                                     "carl@partner.org": Role.ANALYST}
        assert dict(roles.domains) == {"example.com": Role.VIEWER, "analytics.example.net": Role.ANALYST}
        assert roles.source == str(tmp_path / "roles.toml")

    def test_a_missing_file_gives_no_roles(self, tmp_path):
        roles = access.load_roles(tmp_path / "nowhere.toml")
        assert (dict(roles.users), dict(roles.domains), roles.source) == ({}, {}, None)

    def test_the_committed_example_parses(self):
        roles = access.load_roles(EXAMPLE)
        assert set(roles.users.values()) == {Role.VIEWER, Role.ANALYST, Role.ADMIN}
        assert roles.domains

    @pytest.mark.parametrize("text, message", [
        ('[users]\n"ana@example.com" = "admin"\n"bob@example.com" = ', r"roles\.toml: not a valid TOML file"),
        ('[users]\n"ana@example.com" = "superuser"\n',
         r"roles\.toml: \[users\] 'ana@example.com': unknown role 'superuser'; use one of viewer, analyst, admin"),
        ('[users]\n"ana" = "admin"\n', r"roles\.toml: \[users\] 'ana' is not an e-mail address"),
        ('[users]\n"a b@example.com" = "admin"\n', r"'a b@example.com' is not an e-mail address"),
        ('[domains]\n"bob@example.com" = "viewer"\n', r"\[domains\] 'bob@example.com' is not a domain"),
        ('[domains]\n"localhost" = "viewer"\n', r"\[domains\] 'localhost' is not a domain"),
        ('[user]\n"ana@example.com" = "admin"\n', r"roles\.toml: unknown section\(s\) user"),
        ('users = "ana@example.com"\n', r"\[users\] must be a table"),
        ('[users]\n"ana@example.com" = "admin"\n"ANA@example.com" = "viewer"\n',
         r"listed twice \(letter case does not count\) with different roles admin and viewer"),
    ], ids=["bad-toml", "unknown-role", "not-an-address", "space-in-address", "address-as-domain",
            "domain-without-dot", "unknown-section", "users-not-a-table", "case-duplicate"])
    def test_a_bad_file_names_the_file_and_the_problem(self, tmp_path, text, message):
        path = write(tmp_path, text)
        with pytest.raises(access.RolesFileError, match=message) as caught:
            access.load_roles(path)
        assert str(path) in str(caught.value)

    def test_the_same_address_twice_with_the_same_role_is_fine(self, tmp_path):
        roles = access.load_roles(write(tmp_path, '[users]\n"ana@example.com" = "admin"\n"ANA@example.com" = '
                                                  '"admin"\n'))
        assert dict(roles.users) == {"ana@example.com": Role.ADMIN}


class TestRoleFor:
    @pytest.mark.parametrize("email, role", [
        ("ana@example.com", Role.ADMIN),            # own line beats the domain's viewer
        ("  ANA@EXAMPLE.COM ", Role.ADMIN),         # any case, stray spaces
        ("vic@Example.com", Role.VIEWER),
        ("carl@partner.org", Role.ANALYST),
        ("zoe@example.com", Role.VIEWER),           # not listed: the domain's role
        ("zoe@Analytics.Example.Net", Role.ANALYST),
        ("zoe@sub.example.com", None),              # domains match exactly, not their subdomains
        ("zoe@example.com.evil.org", None),
        ("dave@partner.org", None),                 # deny by default
        ("example.com", None),                      # not an address
        ("", None),
        (None, None),
    ], ids=["own-line", "case-and-spaces", "viewer", "analyst", "domain", "domain-case", "subdomain",
            "lookalike-domain", "unlisted", "bare-domain", "empty", "none"])
    def test_role_for(self, roles, email, role):
        assert access.role_for(roles, email) == role

    def test_no_roles_file_denies_everyone(self):
        assert access.role_for(access.Roles(), "ana@example.com") is None


class TestPermissions:
    # The table of docs/security.md, written out by hand: it must not change without the docs.
    EXPECTED = {
        Role.VIEWER: {"view"},
        Role.ANALYST: {"view", "view_personal", "import", "export", "add_note"},
        Role.ADMIN: {"view", "view_personal", "import", "export", "add_note", "reset", "manage_goals", "view_audit"},
    }

    @pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
    def test_each_role_may_do_exactly_its_actions(self, role):
        assert {a for a in access.ACTIONS if access.can(role, a)} == self.EXPECTED[role]

    def test_each_role_includes_the_one_before(self):
        assert self.EXPECTED[Role.VIEWER] < self.EXPECTED[Role.ANALYST] < self.EXPECTED[Role.ADMIN]
        assert set(self.EXPECTED[Role.ADMIN]) == set(access.ACTIONS)

    def test_no_role_may_do_nothing(self):
        assert not any(access.can(None, a) for a in access.ACTIONS)

    def test_a_role_given_as_text_works(self):
        assert access.can("analyst", "export") and not access.can("viewer", "export")

    def test_an_unknown_action_is_an_error(self):
        with pytest.raises(ValueError, match="Unknown action 'delete_everything'"):
            access.can(Role.ADMIN, "delete_everything")

    def test_every_action_is_explained(self):
        assert set(access.ACTION_HELP) == set(access.ACTIONS)

    def test_the_docs_print_the_same_table(self):
        """docs/security.md has one table row per action with a mark under each role allowed to do it."""
        text = (Path(__file__).parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
        for action in access.ACTIONS:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
                    if line.startswith(f"| `{action}` |")]
            (cells,) = [r for r in rows if r[1] in ("yes", "no")]  # the permission table, not the audit table
            marks = {role for role, cell in zip(list(Role), cells[1:4]) if cell == "yes"}
            assert marks == {r for r in Role if action in self.EXPECTED[r]}, cells
