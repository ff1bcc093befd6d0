"""What the console ships: every asset in the package, nothing from the network, and no way for
data to become markup (the pages build the DOM from text nodes only)."""

import re

from driftwise.console.pages import PAGES, load_assets

MARKUP_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(['\"]on"
)


def test_every_page_module_and_asset_is_in_the_package() -> None:
    assets = load_assets()
    assert {"index.html", "console.css", "favicon.svg", "js/main.js", "js/dom.js", "js/charts.js"} <= set(
        assets
    )
    main = assets["js/main.js"].body.decode()
    for name in ("overview", "quality", "users", "user", "items", "item", "evaluation", "login"):
        assert f"./pages/{name}.js" in main and f"js/pages/{name}.js" in assets
    assert len(PAGES) == 8


def test_no_script_writes_markup() -> None:
    for name, asset in load_assets().items():
        if name.endswith(".js"):
            found = MARKUP_SINKS.search(asset.body.decode())
            assert found is None, f"{name}: {found and found.group()}"


def test_nothing_comes_from_the_network() -> None:
    for name, asset in load_assets().items():
        text = asset.body.decode(errors="replace")
        urls = re.findall(r"https?://[^\s\"')]+", text)
        assert all(u.startswith("http://www.w3.org/") for u in urls), (name, urls)  # SVG namespaces only


def test_the_shell_has_no_inline_script_or_style() -> None:
    shell = load_assets()["index.html"].body.decode()
    scripts = re.findall(r"<script[^>]*>", shell)
    assert scripts == ['<script type="module" src="/static/js/main.js">']
    assert "<style" not in shell and "style=" not in shell and " on" not in shell.replace(" one", "")
    assert "__CSRF_TOKEN__" in shell
