from energywatch.urls import canonical_url, document_id, domain_of


def test_tracking_parameters_and_fragments_removed() -> None:
    a = canonical_url("https://News.Example.com:443/a/b?utm_source=rss&id=3&fbclid=x&utm_campaign=y#comments")
    b = canonical_url("https://news.example.com/a/b?id=3")
    assert a == b == "https://news.example.com/a/b?id=3"
    assert document_id(a) == document_id(b) and len(document_id(a)) == 32


def test_meaningful_parameters_kept_and_sorted() -> None:
    assert canonical_url("http://x.example/story?p=12&b=2") == "http://x.example/story?b=2&p=12"
    assert canonical_url("http://x.example/?p=1") != canonical_url("http://x.example/?p=2")


def test_relative_and_domain() -> None:
    assert canonical_url("../a", base="https://x.example/feed/rss") == "https://x.example/a"
    assert domain_of("https://www.bbc.co.uk/news") == "bbc.co.uk"
