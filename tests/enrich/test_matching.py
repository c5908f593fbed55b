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
    # "power station" (محطة الكهرباء) is one concept: its word "electricity" does not count again
    assert {"attack", "power-plant", "gas"} <= found and "electricity" not in found
    assert "electricity" in concepts("انقطاع الكَهْرَبَاءِ في المدينة", "ar")


def test_a_concept_phrase_swallows_the_concepts_of_its_words() -> None:
    # "energy security" is policy evidence, not also "energy" and "security"
    found = concepts("The minister spoke about energy security and offshore wind.", "en")
    assert "energy-security" in found and "security" not in found and "energy" not in found
    assert {"security", "energy-security"} <= concepts("Energy security matters; the security services warned.", "en")


def test_names_and_short_terms_match_as_written() -> None:
    # the club Neftçi is no oil (its word family neft- is), and Ukrainian сво- ("own") is not the war's СВО
    assert "oil" not in concepts("Neftçi Araz-Naxçıvanı məğlub edib.", "az")
    assert "sport" in concepts("Neftçi Araz-Naxçıvanı məğlub edib.", "az")
    assert "oil" in concepts("Azərbaycan nefti Avropaya çatır.", "az")
    assert "war" not in concepts("Родини відмовилися від газу на користь своїх котлів.", "uk")
    # a Turkish word whose stem is one or two letters (ordu, army → "or") matches by its prefix only
    assert "military" not in concepts("Kısa, orta ve uzun vadede anlaşmalar yapıldı.", "tr")
    assert "military" in concepts("Türk ordusu tatbikata katıldı.", "tr")
    # the Italian nato ("born") is no NATO, as concept or as organisation; Nato and NATO are
    assert "nato" not in concepts("Il cucciolo di orso è nato nel parco.", "it")
    assert "nato" in concepts("La Nato ha discusso la sicurezza.", "it") and "nato" in concepts("Nato allies met.", "en")


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
