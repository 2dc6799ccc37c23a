import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from osteomri.report import HtmlReport


def _report(tmp_path):
    rep = HtmlReport("Test <report>")
    rep.heading("Table")
    rep.table(pd.DataFrame({"level": ["L1", "L2"], "pdff_percent": [41.234, 55.5]}), caption="PDFF")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    rep.figure(fig, caption="a line")
    rep.provenance({"version": "x"})
    return rep.write(tmp_path / "r.html")


def test_report_is_self_contained_and_escaped(tmp_path):
    text = _report(tmp_path).read_text()
    assert "Test &lt;report&gt;" in text
    assert "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    assert "41.2" in text


@pytest.mark.browser
def test_report_renders_in_chromium(tmp_path, render_html):
    dom = render_html(_report(tmp_path))
    assert "<caption>PDFF</caption>" in dom
    assert dom.count("<img") == 1 and "L2" in dom
