"""``mss catalogue add / list / reference / withdraw`` as an operator runs them.

A refusal is one line ``mss: <sentence>`` with exit code 2, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mss.catalogue.models import CatalogueService
from mss.cli import main
from tests.test_cli_directory import count, one_error_line

SCOPES = ["--scope", "measurements:write", "--scope", "documents:11502-2"]
DESCRIBED = [
    "--name",
    "Carnet de poids",
    "--editor",
    "Association Démo Santé",
    "--description",
    "Notez votre poids.",
    "--redirect-uri",
    "https://carnet.example/retour",
    "--home-url",
    "https://carnet.example/",
]
GOOD = DESCRIBED + SCOPES


@pytest.fixture
def mss(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {
        "MSS_DATABASE_URL": database_url,
        "MSS_DATA_DIR": str(tmp_path / "var"),
        "MSS_CONFIG": None,
    }

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_add_list_reference_withdraw(mss, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert mss("catalogue", "list").output == "no service registered\n"
    added = mss("catalogue", "add", *GOOD, "--client-id", "carnet")
    assert added.exit_code == 0, added.output
    assert added.output == (
        "registered carnet\tunder_review\tCarnet de poids\tAssociation Démo Santé\t"
        "measurements:write documents:11502-2\thttps://carnet.example/retour\n"
    )
    drawn = mss("catalogue", "add", *GOOD, "--status", "referenced")
    client_id = drawn.output.split("\t")[0].removeprefix("registered ")
    assert client_id.startswith("svc-") and len(client_id) == 20
    listed = mss("catalogue", "list").output.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["under_review", "referenced"]
    assert mss("catalogue", "list", "--status", "referenced").output.startswith(client_id)
    assert mss("catalogue", "reference", "carnet").output.startswith("referenced carnet\t")
    withdrawn = mss("catalogue", "withdraw", "carnet")
    assert withdrawn.output.startswith("withdrawn carnet\twithdrawn\t")
    assert mss("catalogue", "list", "--status", "withdrawn").output.startswith("carnet\t")
    assert count(database_url, CatalogueService) == 2


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"--scope": "profile"}, "Unknown scope 'profile'"),
        ({"--scope": "documents:LOINC"}, "Unknown scope 'documents:LOINC'"),
        ({"--scope": "profile:write"}, "Unknown scope 'profile:write'"),
        ({"--scope": "agenda:write"}, "Unknown scope 'agenda:write'"),
        ({"--redirect-uri": "http://carnet.example/retour"}, "must be an absolute https://"),
        ({"--redirect-uri": "https://carnet.example/retour#x"}, "without fragment"),
        ({"--redirect-uri": "/retour"}, "must be an absolute https://"),
        ({"--home-url": "javascript:alert(1)"}, "home URL"),
        ({"--name": "   "}, "the service's name is required"),
        ({"--editor": "x" * 201}, "editor is longer than 200 characters"),
        ({"--client-id": "a b"}, "letters, digits, - and _ only"),
    ],
)
def test_refusals_write_nothing(  # type: ignore[no-untyped-def]
    mss, database_url: str, changes: dict[str, str], sentence: str
) -> None:
    args = list(DESCRIBED) + (["--scope", changes["--scope"]] if "--scope" in changes else SCOPES)
    for option, value in changes.items():
        if option in DESCRIBED:
            args[args.index(option) + 1] = value
        elif option != "--scope":
            args += [option, value]
    result = mss("catalogue", "add", *args)
    assert result.exit_code == 2, result.output
    assert sentence in result.stderr and result.stderr.startswith("mss: ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert count(database_url, CatalogueService) == 0


def test_profile_and_agenda_scopes_are_registered(mss) -> None:  # type: ignore[no-untyped-def]
    scopes = ["--scope", "profile:read", "--scope", "agenda:read", "--scope", "documents:11502-2"]
    added = mss("catalogue", "add", *DESCRIBED, *scopes, "--client-id", "suivi")
    assert added.exit_code == 0, added.output
    assert "\tprofile:read agenda:read documents:11502-2\t" in added.output
    assert "profile:read agenda:read" in mss("catalogue", "list").output
    unknown = mss("catalogue", "add", *DESCRIBED, "--scope", "profile:read", "--scope", "agenda")
    assert unknown.exit_code == 2 and "Unknown scope 'agenda'" in unknown.stderr
    assert "profile:read, agenda:read" in unknown.stderr  # the refusal names the known forms


def test_duplicate_client_id_and_unknown_service(mss) -> None:  # type: ignore[no-untyped-def]
    assert mss("catalogue", "add", *GOOD, "--client-id", "carnet").exit_code == 0
    one_error_line(
        mss("catalogue", "add", *GOOD, "--client-id", "carnet"),
        "mss: a service with client id carnet is already registered",
    )
    one_error_line(mss("catalogue", "withdraw", "absent"), "mss: no service with client id absent")
    refused = mss("catalogue", "add", *GOOD, "--status", "published")
    assert refused.exit_code == 2 and "published" in refused.output
