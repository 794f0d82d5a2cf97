"""The paths issue 15 added answer bad input (NUL, ids past 2^63, empty, over-long) with a message, never a 500."""
import pytest

BAD = ["\x00", str(2 ** 63), "", "9" * 5000, "-1", "abc"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("path", ["/contracts/renew-certificate/", "/contracts/rekey/"])
def test_certificate_actions_refuse_bad_ids(web, path, value):
    response = web("admin").post(path, {"id": value}, follow_redirects=True)
    assert response.status_code < 500, (path, value, response.status_code)


@pytest.mark.parametrize("value", BAD)
def test_upload_steps_refuse_bad_tokens_and_kinds(web, value):
    admin = web("admin")
    assert admin.get("/stores/upload/preview/", query_string={"token": value}).status_code < 500
    assert admin.post("/stores/upload/confirm/", {"token": value}, follow_redirects=True).status_code < 500
    assert admin.get(f"/stores/upload/template.{value.replace(chr(0), '%00')[:50]}").status_code < 500
