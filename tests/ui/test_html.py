"""The HTML builder escapes every piece of text, in content and in attributes."""

from __future__ import annotations

from ostinato.ui._html import Markup, escape, join, tag


def test_text_and_attributes_are_escaped() -> None:
    hostile = "\"><script>alert('x')</script>&"
    html = tag("a", hostile, href=hostile, title=hostile)
    assert "<script>" not in html
    assert html == (
        '<a href="&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" '
        'title="&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;">'
        "&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;</a>"
    )


def test_markup_nests_without_double_escaping() -> None:
    inner = tag("b", "1 < 2")
    assert tag("p", inner, " & ", None, ["x", 3]) == "<p><b>1 &lt; 2</b> &amp; x3</p>"
    assert isinstance(join("a", inner), Markup)
    assert escape(inner) is inner


def test_attribute_names_and_flags() -> None:
    assert tag("input", name="q", data_id="7", required=True, hidden=False, value=None) == (
        '<input name="q" data-id="7" required>'
    )
    assert tag("div", class_="x") == '<div class="x"></div>'
