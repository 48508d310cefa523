"""A synthetic customer table with known PII, for the demo, the PII engine's tests and its benchmark.

Pure Python with numpy and pyarrow (no presidio): the web process and the demo import it.
``customer_table(n_rows, seed)`` is deterministic: the same arguments give the same table and
the same ``truth``, the list of every PII value it seeded, with the cell it is in and presidio's
entity name for it. Values look real but are made up: names come from built-in lists, card
numbers carry real issuer prefixes and a valid Luhn digit, IBANs a valid mod-97 checksum for
their country's format, SSNs avoid the area numbers the SSA never issues (000, 666, 9xx) and
the famous sample 078-05-1120, phone numbers use real North American area codes and never the
fictional 555 exchange.

About a third of the rows carry PII in one of the two free-text columns (``notes``,
``support_ticket``); the other cells of those columns are plain text (agent notes without
personal data, as most real notes are).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import NamedTuple

import numpy as np

ENTITY_TYPES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "LOCATION",
    "DATE_TIME",
)
TEXT_COLUMNS = ("notes", "support_ticket")
COLUMN_ROLES = {
    "customer_id": "identifier",
    "full_name": "sensitive",
    "email": "identifier",
    "phone": "identifier",
    "street_address": "sensitive",
    "date_of_birth": "sensitive",
    "card_number": "identifier",
    "iban": "identifier",
    "notes": "text",
    "support_ticket": "text",
    "income": "feature",
    "tenure_months": "feature",
    "risk_score": "feature",
}

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily",
    "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian", "Rebecca", "George", "Laura",
    "Maria", "Jose", "Carmen", "Luis", "Sofia", "Diego", "Valentina", "Alejandro", "Lucia", "Javier",
    "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Priya", "Rahul", "Ananya", "Arjun",
    "Aisha", "Omar", "Fatima", "Yusuf", "Leila", "Hassan", "Amara", "Kwame", "Chidi", "Ngozi",
    "Liam", "Siobhan", "Declan", "Aoife", "Lars", "Ingrid", "Sven", "Anja", "Matteo", "Giulia",
    "Pierre", "Camille", "Luca", "Elena", "Dmitri", "Olga", "Tomasz", "Katarzyna", "Nikos", "Eleni",
    "Grace", "Henry", "Olivia", "Noah", "Chloe", "Ethan", "Hannah", "Samuel", "Zoe", "Isaac",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez", "Ramirez", "Torres",
    "Chen", "Wang", "Li", "Zhang", "Liu", "Nguyen", "Tanaka", "Sato", "Kim", "Park",
    "Patel", "Sharma", "Singh", "Gupta", "Iyer", "Khan", "Ali", "Haddad", "Nasser", "Okafor",
    "Mensah", "Adeyemi", "Mwangi", "O'Brien", "Murphy", "Kelly", "Byrne", "Larsen", "Johansson", "Nilsson",
    "Rossi", "Bianchi", "Esposito", "Dubois", "Moreau", "Lefevre", "Muller", "Schmidt", "Schneider", "Fischer",
    "Novak", "Kowalski", "Nowak", "Ivanov", "Petrov", "Papadopoulos", "Costa", "Silva", "Santos", "Oliveira",
    "Campbell", "Stewart", "Morris", "Rogers", "Reed", "Cook", "Bailey", "Cooper", "Richardson", "Cox",
    "Howard", "Ward", "Peterson", "Gray", "Hughes", "Price", "Bennett", "Wood", "Barnes", "Fletcher",
)  # fmt: skip
STREET_NAMES = (
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main",
    "Sunset", "Highland", "Jefferson", "Lincoln", "Franklin", "Madison", "Willow", "Birch", "River", "Chestnut",
)  # fmt: skip
STREET_SUFFIXES = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court", "Place", "Way")
CITIES = (
    ("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Portland", "OR", "972"), ("Denver", "CO", "802"),
    ("Boston", "MA", "021"), ("Seattle", "WA", "981"), ("Atlanta", "GA", "303"), ("Phoenix", "AZ", "850"),
    ("Columbus", "OH", "432"), ("Nashville", "TN", "372"), ("Sacramento", "CA", "958"), ("Raleigh", "NC", "276"),
    ("Madison", "WI", "537"), ("Richmond", "VA", "232"), ("Tampa", "FL", "336"), ("Omaha", "NE", "681"),
)  # fmt: skip
# Real North American area codes (a few per region).
AREA_CODES = (
    "201", "212", "213", "303", "305", "312", "404", "415", "469", "503", "512", "602", "614", "615", "617",
    "646", "702", "713", "718", "773", "804", "813", "916", "917", "919", "972",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "proton.me", "icloud.com", "fastmail.com")
# (issuer prefix, total length, grouping when printed with separators)
CARD_ISSUERS = (
    ("4", 16, (4, 4, 4, 4)),  # Visa
    ("51", 16, (4, 4, 4, 4)),  # Mastercard
    ("53", 16, (4, 4, 4, 4)),
    ("55", 16, (4, 4, 4, 4)),
    ("2221", 16, (4, 4, 4, 4)),  # Mastercard 2-series
    ("34", 15, (4, 6, 5)),  # American Express
    ("37", 15, (4, 6, 5)),
    ("6011", 16, (4, 4, 4, 4)),  # Discover
    ("65", 16, (4, 4, 4, 4)),
)
# Country, total length, BBAN layout: "n" digits, "a" upper-case letters, "c" alphanumeric.
IBAN_FORMATS = (
    ("DE", "n" * 18),
    ("GB", "aaaa" + "n" * 14),
    ("FR", "n" * 10 + "c" * 11 + "nn"),
    ("ES", "n" * 20),
    ("NL", "aaaa" + "n" * 10),
    ("IT", "a" + "n" * 10 + "c" * 12),
    ("BE", "n" * 12),
)
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# Plain agent notes: no personal data. Real notes repeat a lot; these combine into many variants.
PLAIN_NOTES = (
    "Customer asked about the monthly fee.",
    "Reviewed the account, nothing unusual found.",
    "Left a voicemail, will try again tomorrow.",
    "Statement copy sent by post.",
    "Requested a higher credit limit; referred to underwriting.",
    "Confirmed the autopay settings.",
    "Customer happy with the resolution.",
    "Paperless billing enabled at the customer's request.",
    "Overdraft protection explained.",
    "Disputed a merchant charge; case opened.",
    "Travel notice added to the account.",
    "Fee waived as a one-time courtesy.",
    "Asked how interest is calculated on the savings account.",
    "Loyalty points balance checked.",
    "No answer on the second attempt.",
    "Account flagged for the annual review.",
    "Customer prefers contact by email.",
    "Mobile app login issue resolved after a reinstall.",
    "Explained the new terms and conditions.",
    "Closed the duplicate ticket.",
)
PLAIN_TICKETS = (
    "Password reset link expired, sent a new one.",
    "The mobile app crashes when opening the statements tab.",
    "Payment is still pending after three business days.",
    "Cannot download the tax form from the website.",
    "Two-factor codes arrive late.",
    "Card was declined at a gas station, retried successfully.",
    "Wants to change the statement date.",
    "Question about foreign transaction fees.",
    "Direct deposit did not arrive on time.",
    "Reported a typo on the last statement.",
    "Requests a replacement card after it was damaged.",
    "Chat session dropped twice.",
    "Asked to increase the daily transfer limit.",
    "Notifications are not showing on the phone app.",
    "Unable to link an external account.",
    "Asked for a copy of the loan agreement.",
    "Complains about hold music on the support line.",
    "Wants paper statements again.",
    "Balance shown in the app differs from the website.",
    "Thanks the team for the quick fix.",
)


class SeededPii(NamedTuple):
    """One PII value the generator put in the table: its row, column, presidio entity type and exact text."""

    row: int
    column: str
    entity_type: str
    value: str


def _luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` (separators ignored) pass the Luhn checksum."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return bool(digits) and total % 10 == 0


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (spaces ignored) passes the ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


class _Faker:
    """Draws realistic values from one ``random.Random``."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def email(self, name: str | None = None) -> str:
        first, last = (name or self.name()).lower().replace("'", "").replace("-", "").split(" ", 1)
        local = self.rng.choice(
            (f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{first}{self.rng.randint(1, 99)}")
        )
        return f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"

    def phone(self) -> str:
        area = self.rng.choice(AREA_CODES)
        exchange = str(self.rng.randint(201, 989))
        while exchange == "555" or exchange[1:] == "11":
            exchange = str(self.rng.randint(201, 989))
        line = f"{self.rng.randint(0, 9999):04d}"
        style = self.rng.randrange(4)
        if style == 0:
            return f"({area}) {exchange}-{line}"
        if style == 1:
            return f"{area}-{exchange}-{line}"
        if style == 2:
            return f"+1 {area} {exchange} {line}"
        return f"{area}.{exchange}.{line}"

    def address(self) -> str:
        city, state, zip3 = self.rng.choice(CITIES)
        street = f"{self.rng.choice(STREET_NAMES)} {self.rng.choice(STREET_SUFFIXES)}"
        return f"{self.rng.randint(1, 9899)} {street}, {city}, {state} {zip3}{self.rng.randint(0, 99):02d}"

    def birth_date(self) -> tuple[int, int, int]:
        return self.rng.randint(1940, 2004), self.rng.randint(1, 12), self.rng.randint(1, 28)

    def card(self, separators: bool | None = None) -> str:
        prefix, length, groups = self.rng.choice(CARD_ISSUERS)
        body = prefix + "".join(str(self.rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
        number = body + _luhn_digit(body)
        style = self.rng.randrange(3) if separators is None else (self.rng.randrange(1, 3) if separators else 0)
        if style == 0:
            return number
        out, i = [], 0
        for size in groups:
            out.append(number[i : i + size])
            i += size
        return (" " if style == 1 else "-").join(out)

    def iban(self) -> str:
        country, layout = self.rng.choice(IBAN_FORMATS)
        alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        bban = "".join(
            str(self.rng.randint(0, 9))
            if kind == "n"
            else self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if kind == "a"
            else self.rng.choice(alnum)
            for kind in layout
        )
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
        if self.rng.random() < 0.4:  # the printed form, in groups of four
            iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban

    def ssn(self) -> str:
        while True:
            area = self.rng.randint(1, 899)
            if area == 666:
                continue
            value = f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"
            if value not in ("078-05-1120", "219-09-9999", "123-45-6789"):
                return value

    def ip(self) -> str:
        if self.rng.random() < 0.15:
            groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(6)]
            return "2001:db8:" + ":".join(groups)
        first = self.rng.choice((23, 45, 66, 73, 81, 98, 104, 141, 172, 185, 192, 203, 212))
        return f"{first}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"


def _text_date(faker: _Faker, date: tuple[int, int, int]) -> str:
    year, month, day = date
    style = faker.rng.randrange(3)
    if style == 0:
        return f"{month:02d}/{day:02d}/{year}"
    if style == 1:
        return f"{MONTHS[month - 1]} {day}, {year}"
    return f"{year}-{month:02d}-{day:02d}"


# Free-text sentences with PII. Each slot is (entity type, generator key); the sentence reads like an agent's note.
_PII_SENTENCES = (
    ("Customer {PERSON} called from {PHONE_NUMBER} about a late fee.", None),
    ("Spoke with {PERSON}; new email on file is {EMAIL_ADDRESS}.", None),
    ("Please call {PERSON} back on mobile {PHONE_NUMBER} after 5pm.", None),
    ("Card {CREDIT_CARD} reported stolen, blocked and reissued.", None),
    ("Verified identity with SSN {US_SSN} and date of birth {DATE_TIME}.", None),
    ("Refund sent to IBAN {IBAN_CODE} as requested.", None),
    ("Suspicious login from IP {IP_ADDRESS}, password reset forced.", None),
    ("{PERSON} moved to {LOCATION}, please update the mailing address.", None),
    ("Chargeback on card number {CREDIT_CARD} for {PERSON}.", None),
    ("Wire transfer to {IBAN_CODE} held for review, customer {PERSON} informed.", None),
    ("Social security number {US_SSN} did not match the application.", None),
    ("Contact {EMAIL_ADDRESS} or phone {PHONE_NUMBER} for the follow-up.", None),
    ("Login attempts from {IP_ADDRESS} and {IP_ADDRESS} were blocked.", None),
    ("DOB {DATE_TIME} confirmed by {PERSON} over the phone.", None),
    ("Send the replacement card to {LOCATION}.", None),
    ("Escalated: {PERSON} says the charge on {CREDIT_CARD} is not theirs.", None),
)


def _fill_sentence(faker: _Faker, template: str) -> tuple[str, list[tuple[str, str]]]:
    out, seeded, rest = [], [], template
    while "{" in rest:
        before, _, after = rest.partition("{")
        kind, _, rest = after.partition("}")
        out.append(before)
        if kind == "PERSON":
            value = faker.name()
        elif kind == "EMAIL_ADDRESS":
            value = faker.email()
        elif kind == "PHONE_NUMBER":
            value = faker.phone()
        elif kind == "CREDIT_CARD":
            value = faker.card()
        elif kind == "US_SSN":
            value = faker.ssn()
        elif kind == "IBAN_CODE":
            value = faker.iban()
        elif kind == "IP_ADDRESS":
            value = faker.ip()
        elif kind == "LOCATION":
            value = faker.address()
        elif kind == "DATE_TIME":
            value = _text_date(faker, faker.birth_date())
        else:  # pragma: no cover - a typo in the templates above
            raise KeyError(kind)
        out.append(value)
        seeded.append((kind, value))
    out.append(rest)
    return "".join(out), seeded


def _plain(faker: _Faker, phrases: tuple[str, ...]) -> str:
    text = faker.rng.choice(phrases)
    if faker.rng.random() < 0.5:
        text = f"{text} {faker.rng.choice(phrases)}"
    if faker.rng.random() < 0.3:  # a reference number makes the note unique, as ticket systems do
        text = f"{text} Ref {faker.rng.randint(10000, 99999)}."
    return text


def customer_table(n_rows: int, seed: int = 0):
    """A customer table of ``n_rows`` rows and the list of every PII value seeded in it.

    Returns ``(table, truth)``: ``table`` is a ``pyarrow.Table`` with the columns of
    ``COLUMN_ROLES`` in that order (strings, except ``income`` float64, ``tenure_months`` int64
    and ``risk_score`` float64); ``truth`` is a list of ``SeededPii(row, column, entity_type,
    value)``, one per value, where ``value`` is exactly the text in that cell (the whole cell for
    the structured columns, a substring of it in ``notes`` and ``support_ticket``). About 2% of
    the phone numbers and card numbers are missing (null), as in real exports. The same
    ``(n_rows, seed)`` always gives the same table and truth.
    """
    import pyarrow as pa

    if n_rows < 0:
        raise ValueError("n_rows must be zero or more")
    faker = _Faker(random.Random(seed))
    truth: list[SeededPii] = []
    cols: dict[str, list] = {name: [] for name in COLUMN_ROLES}
    for row in range(n_rows):
        name = faker.name()
        email = faker.email(name)
        phone = faker.phone() if faker.rng.random() >= 0.02 else None
        address = faker.address()
        year, month, day = faker.birth_date()
        dob = f"{year}-{month:02d}-{day:02d}"
        card = faker.card() if faker.rng.random() >= 0.02 else None
        iban = faker.iban()
        cols["customer_id"].append(f"CUST-{100000 + row * 7 + seed % 7:07d}")
        for column, entity, value in (
            ("full_name", "PERSON", name),
            ("email", "EMAIL_ADDRESS", email),
            ("phone", "PHONE_NUMBER", phone),
            ("street_address", "LOCATION", address),
            ("date_of_birth", "DATE_TIME", dob),
            ("card_number", "CREDIT_CARD", card),
            ("iban", "IBAN_CODE", iban),
        ):
            cols[column].append(value)
            if value is not None:
                truth.append(SeededPii(row, column, entity, value))
        # About a third of the rows carry PII in one free-text column (rarely both).
        roll = faker.rng.random()
        pii_columns = set()
        if roll < 0.33:
            pii_columns.add(faker.rng.choice(TEXT_COLUMNS))
            if faker.rng.random() < 0.1:
                pii_columns = set(TEXT_COLUMNS)
        for column, phrases in (("notes", PLAIN_NOTES), ("support_ticket", PLAIN_TICKETS)):
            if column in pii_columns:
                template = faker.rng.choice(_PII_SENTENCES)[0]
                text, seeded = _fill_sentence(faker, template)
                if faker.rng.random() < 0.5:
                    text = f"{faker.rng.choice(phrases)} {text}"
                truth.extend(SeededPii(row, column, kind, value) for kind, value in seeded)
            elif faker.rng.random() < 0.05:
                text = None
            else:
                text = _plain(faker, phrases)
            cols[column].append(text)
    rng = np.random.default_rng(seed)
    cols["income"] = np.round(rng.lognormal(10.8, 0.5, n_rows), 2)
    cols["tenure_months"] = rng.integers(0, 240, n_rows)
    cols["risk_score"] = np.round(rng.beta(2, 5, n_rows), 4)
    fields = [pa.field(name, pa.string()) for name in COLUMN_ROLES]
    fields[-3:] = [pa.field("income", pa.float64()), pa.field("tenure_months", pa.int64()),
                   pa.field("risk_score", pa.float64())]  # fmt: skip
    schema = pa.schema(fields)
    table = pa.table({name: pa.array(cols[name], type=schema.field(name).type) for name in COLUMN_ROLES}, schema=schema)
    return table, truth


def write_table(table, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``table`` as CSV, Parquet or JSON Lines (``fmt``, or guessed from the suffix) and return the path."""
    import json

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    fmt = fmt or {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}.get(path.suffix)
    if fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as out:
            for row in table.to_pylist():
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"unknown format for {path.name}: use csv, parquet or jsonl")
    return path


def column_schema() -> list[dict]:
    """The registry's dataset schema for the table: name, type and role of each column."""
    types = {"income": "double", "tenure_months": "int64", "risk_score": "double"}
    return [{"name": name, "type": types.get(name, "string"), "role": role} for name, role in COLUMN_ROLES.items()]
