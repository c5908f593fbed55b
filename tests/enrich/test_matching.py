"""Normalisation, stemming and entity matching per language, inflected forms included."""

import pytest

from energywatch.enrich import enrich


def entities(text: str, lang: str):
    return enrich("", text, lang).entities


def concepts(text: str, lang: str) -> set[str]:
    return {e.concept for e in enrich("", text, lang).relevance.evidence}


@pytest.mark.parametrize("lang,text,country", [
    ("ru", "Делегация Азербайджана прибыла в Брюссель.", "AZ"),
    ("ru", "Поставки газа из России выросли.", "RU"),
    ("ar", "قدمت المساعدات لأوكرانيا خلال الاجتماع.", "UA"),
    ("ar", "وأوضح أن روسيا استهدفت المنشآت.", "RU"),
    ("uk", "Делегація Азербайджану прибула до Брюсселя.", "AZ"),
    ("tr", "Azerbaycan'ın enerji bakanı Ankara'da.", "AZ"),
    ("de", "Die Regierung Aserbaidschans unterzeichnete.", "AZ"),
    ("fr", "L'Azerbaïdjan a signé un accord.", "AZ"),
    ("es", "Ucrania recibió gas de Eslovaquia.", "UA"),
    ("pl", "Ukraina otrzymała gaz ze Słowacji.", "UA"),
    ("en", "Officials in Kyiv said Ukraine would respond.", "UA"),
])
def test_countries_in_inflected_forms(lang: str, text: str, country: str) -> None:
    assert country in entities(text, lang).countries


def test_common_words_are_not_countries() -> None:
    # «того» is "of that", not Togo; "turkey" in a recipe is not Türkiye
    assert "TG" not in entities("Для того чтобы понять, нужно время.", "ru").countries
    assert "TR" not in entities("We roasted a turkey for dinner.", "en").countries


@pytest.mark.parametrize("lang,text", [
    ("en", "NATO allies met in Brussels."), ("ru", "Страны НАТО обсудили поставки."),
    ("ar", "اجتمع وزراء دفاع الناتو في بروكسل."), ("ar", "قال حلف شمال الأطلسي إن"),
    ("fr", "Les alliés de l'OTAN se sont réunis."), ("tr", "NATO'nun zirvesi başladı."),
    ("uk", "Країни НАТО домовилися."), ("az", "Azərbaycan NATO ilə əməkdaşlıq edir."),
])
def test_nato_in_every_language(lang: str, text: str) -> None:
    assert "NATO" in entities(text, lang).organizations


def test_people_and_infrastructure() -> None:
    assert "Mark Rutte" in entities("استقبل أمين عام الناتو مارك روته الوفد.", "ar").people
    assert "Mark Rutte" in entities("Генсек НАТО Марк Рютте заявил.", "ru").people
    assert "Nord Stream" in entities("Взрывы на «Северном потоке» расследуют.", "ru").infrastructure
    assert "Zaporizhzhia NPP" in entities("МАГАТЭ направило миссию на Запорожскую АЭС.", "ru").infrastructure
    assert "TurkStream" in entities("TürkAkım boru hattına saldırı düzenlendi.", "tr").infrastructure


def test_stemless_languages_use_careful_prefixes() -> None:
    # Ukrainian has no Snowball stemmer: атаки / атак / атакували must still be attacks
    assert "attack" in concepts("Ворожі атаки на енергетику тривають.", "uk")
    assert "attack" in concepts("Росіяни атакували підстанцію.", "uk")
    assert "pipeline" in concepts("Ремонт газопроводу завершено.", "uk")
    assert "war" in concepts("Müharibədən sonra enerji bazarı dəyişdi.", "az")


def test_except_phrases_mask_a_concept() -> None:
    assert "attack" not in concepts("He suffered a heart attack during the match.", "en")
    assert "attack" in concepts("Drones attacked the refinery overnight.", "en")


def test_arabic_diacritics_and_proclitics() -> None:
    vowelled = "هَجَمَاتٌ عَلَى مَحَطَّةِ الكَهْرَبَاءِ وَالغَاز"
    found = concepts(vowelled, "ar")
    assert {"attack", "electricity", "gas"} <= found


def test_unknown_language_degrades_gracefully() -> None:
    # Bulgarian is not in the profile: Russian and Ukrainian terms apply by prefix, nothing crashes
    result = enrich("Атака с дронове срещу нефтено пристанище", "Офисът на тръбопроводния консорциум е поразен.", "bg")
    assert result.relevance.label in {"core", "related", "none"}
    assert enrich("", "", None).relevance.label == "none"


def test_a_lower_case_word_is_not_an_organisation() -> None:
    # the Italian "nato" (born) and the Spanish "nato" (innate) are not NATO; "la Nato" is
    born = enrich("Orso avvistato", "Il cucciolo è nato in primavera nel parco e la madre lo protegge.", "it")
    assert "NATO" not in born.entities.organizations
    alliance = enrich("Vertice", "La Nato ha discusso la sicurezza energetica con gli alleati.", "it")
    assert "NATO" in alliance.entities.organizations
    assert "NATO" in enrich("Summit", "Officials at NATO headquarters met on Monday.", "en").entities.organizations
