from pathview.wording import count


def test_counted_nouns_agree_in_number():
    assert count(1, "tile") == "1 tile"
    assert count(0, "region") == "0 regions"
    assert count(12000, "slide") == "12,000 slides"
    assert count(2, "analysis", "analyses") == "2 analyses"
