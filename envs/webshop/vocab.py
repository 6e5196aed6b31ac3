"""The vocabulary of the generated shop: categories, product types, attributes, options, brands.

Each product type names its WebShop top category, its category path (``product_category``,
levels joined by ``" › "`` as in the scraped data), the search query it was "scraped" under (the
original's ``query`` field, shared by every product of the type), a pool of attributes (the
original's ``Attributes``: short phrases such as ``"gluten free"``), the option names it offers
and a price range. Option value pools are shared across types.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ProductType",
    "PRODUCT_TYPES",
    "OPTION_VALUES",
    "CATEGORIES",
    "BRAND_PARTS",
    "FEATURE_TEMPLATES",
]

#: The five WebShop top categories -> their root category path level.
CATEGORIES: dict[str, str] = {
    "beauty": "Beauty & Personal Care",
    "grocery": "Grocery & Gourmet Food",
    "fashion": "Clothing, Shoes & Jewelry",
    "furniture": "Home & Kitchen",
    "electronics": "Electronics",
}


@dataclass(frozen=True)
class ProductType:
    """One kind of product the generator makes (e.g. a dark chocolate bar)."""

    category: str  # WebShop top category (a key of CATEGORIES)
    name: str  # the type noun phrase used in titles and instructions
    path: tuple[str, ...]  # category levels below the root
    attributes: tuple[str, ...]  # pool the product's Attributes are drawn from
    options: tuple[str, ...]  # option names (keys of OPTION_VALUES)
    price: tuple[float, float]  # price range in dollars


def _t(
    category: str, name: str, path: str, attributes: str, options: str, low: float, high: float
) -> ProductType:
    return ProductType(
        category=category,
        name=name,
        path=tuple(p.strip() for p in path.split(">")),
        attributes=tuple(a.strip() for a in attributes.split(",")),
        options=tuple(o.strip() for o in options.split(",") if o.strip()),
        price=(low, high),
    )


# fmt: off
PRODUCT_TYPES: tuple[ProductType, ...] = (
    # ------------------------------------------------------------------ beauty
    _t("beauty", "shampoo", "Hair Care > Shampoo", "sulfate free, paraben free, natural ingredients, tea tree, argan oil, dry hair, cruelty free, long lasting", "size, scent", 6, 45),
    _t("beauty", "face moisturizer", "Skin Care > Face > Moisturizers", "hyaluronic acid, sensitive skin, fragrance free, anti aging, dry skin, oil free, vitamin c, cruelty free", "size", 8, 70),
    _t("beauty", "lipstick", "Makeup > Lips > Lipstick", "long lasting, cruelty free, paraben free, highly pigmented, matte finish, vegan formula, easy apply", "color, count", 5, 35),
    _t("beauty", "nail polish", "Foot, Hand & Nail Care > Nail Polish", "long lasting, quick dry, non toxic, high gloss, gel effect, easy apply, cruelty free", "color, count", 4, 25),
    _t("beauty", "hair dryer", "Hair Care > Styling Tools > Hair Dryers", "ionic technology, fast drying, low noise, lightweight design, travel size, salon quality, heat protection", "color, style", 20, 150),
    _t("beauty", "makeup brush set", "Tools & Accessories > Makeup Brushes", "synthetic bristles, easy clean, high quality, travel case, cruelty free, soft bristles, wooden handle", "color, count", 7, 40),
    _t("beauty", "body wash", "Personal Care > Bath & Bathing > Body Washes", "natural ingredients, sensitive skin, paraben free, shea butter, coconut oil, dry skin, sulfate free", "size, scent, count", 5, 30),
    _t("beauty", "eye cream", "Skin Care > Eyes > Creams", "dark circles, anti aging, fine lines, hyaluronic acid, sensitive skin, fragrance free, retinol", "size", 10, 80),
    _t("beauty", "deodorant", "Personal Care > Deodorants & Antiperspirants", "aluminum free, long lasting, natural ingredients, sensitive skin, travel size, baking soda free", "scent, count", 4, 20),
    _t("beauty", "hair oil", "Hair Care > Hair & Scalp Treatments > Oils", "argan oil, dry hair, damaged hair, hair growth, natural ingredients, coconut oil, paraben free", "size, scent", 6, 40),
    _t("beauty", "sunscreen lotion", "Skin Care > Sun > Body Sunscreens", "water resistant, broad spectrum, reef safe, oil free, sensitive skin, fragrance free, non greasy", "size, count", 6, 35),
    _t("beauty", "toothpaste", "Oral Care > Toothpaste", "fluoride free, whitening formula, sensitive teeth, fresh breath, natural ingredients, travel size", "flavor, count", 3, 20),
    # ------------------------------------------------------------------ grocery
    _t("grocery", "dark chocolate bar", "Snacks & Sweets > Chocolate > Bars", "gluten free, dairy free, non gmo, low sugar, fair trade, keto friendly, organic cacao, individually wrapped", "flavor, count", 3, 40),
    _t("grocery", "protein bar", "Snacks & Sweets > Bars > Protein Bars", "gluten free, high protein, low sugar, keto friendly, non gmo, plant based, individually wrapped", "flavor, count", 10, 45),
    _t("grocery", "coffee beans", "Beverages > Coffee > Whole Coffee Beans", "fair trade, medium roast, dark roast, single origin, usda organic, low acid, freshly roasted", "flavor, size", 8, 40),
    _t("grocery", "green tea", "Beverages > Tea > Green Tea", "usda organic, caffeine free, tea bags, loose leaf, non gmo, natural flavor, antioxidant rich", "flavor, count", 4, 30),
    _t("grocery", "potato chips", "Snacks & Sweets > Chips & Crisps", "gluten free, kettle cooked, non gmo, low sodium, individually wrapped, sea salt, family size", "flavor, count", 3, 35),
    _t("grocery", "trail mix", "Snacks & Sweets > Nuts & Seeds > Trail Mix", "non gmo, gluten free, high protein, resealable bag, no added sugar, plant based, roasted nuts", "flavor, size", 5, 30),
    _t("grocery", "olive oil", "Pantry Staples > Cooking Oils > Olive Oil", "extra virgin, cold pressed, usda organic, non gmo, glass bottle, first harvest, single origin", "size, count", 7, 45),
    _t("grocery", "gummy candy", "Snacks & Sweets > Candy > Gummy Candy", "gluten free, fat free, fruit flavored, gelatin free, individually wrapped, resealable bag, vegan friendly", "flavor, count", 3, 25),
    _t("grocery", "pasta sauce", "Pantry Staples > Sauces > Pasta Sauces", "non gmo, no sugar added, gluten free, low sodium, keto friendly, glass jar, real ingredients", "flavor, count", 4, 30),
    _t("grocery", "almond butter", "Pantry Staples > Jams & Spreads > Nut Butters", "no sugar added, non gmo, keto friendly, dry roasted, plant based, gluten free, creamy texture", "flavor, size", 6, 30),
    _t("grocery", "sparkling water", "Beverages > Water > Sparkling Water", "zero calories, sugar free, natural flavor, caffeine free, bpa free, non gmo", "flavor, count", 5, 35),
    _t("grocery", "beef jerky", "Snacks & Sweets > Jerky & Dried Meats", "high protein, low fat, gluten free, grass fed, no preservatives, resealable bag, keto friendly", "flavor, size", 6, 40),
    # ------------------------------------------------------------------ fashion
    _t("fashion", "running shoes", "Men > Shoes > Athletic > Running", "rubber sole, lightweight design, breathable mesh, arch support, non slip, memory foam, lace up", "color, size", 25, 140),
    _t("fashion", "cotton t-shirt", "Men > Clothing > Shirts > T-Shirts", "machine wash, cotton fabric, short sleeve, relaxed fit, crew neck, tagless label, soft fabric", "color, size", 8, 35),
    _t("fashion", "yoga pants", "Women > Clothing > Active > Leggings", "high waist, tummy control, moisture wicking, four way stretch, squat proof, machine wash, side pockets", "color, size", 12, 50),
    _t("fashion", "winter jacket", "Women > Clothing > Coats & Jackets", "water resistant, zipper closure, faux fur, machine wash, warm lining, detachable hood, windproof shell", "color, size", 35, 200),
    _t("fashion", "denim jeans", "Men > Clothing > Jeans", "slim fit, button closure, stretch denim, machine wash, classic fit, zipper fly, cotton blend", "color, size", 20, 90),
    _t("fashion", "summer dress", "Women > Clothing > Dresses > Casual", "short sleeve, v neck, floral print, machine wash, flowy fit, side pockets, soft fabric", "color, size", 18, 70),
    _t("fashion", "leather belt", "Men > Accessories > Belts", "genuine leather, alloy buckle, adjustable fit, gift box, classic design, durable stitching", "color, size", 10, 60),
    _t("fashion", "wool socks", "Men > Clothing > Socks > Casual", "merino wool, moisture wicking, arch support, cushioned sole, machine wash, odor resistant", "color, size, count", 8, 40),
    _t("fashion", "rain boots", "Women > Shoes > Outdoor > Rain Boots", "rubber sole, waterproof design, non slip, pull on, cushioned insole, knee high", "color, size", 20, 90),
    _t("fashion", "baseball cap", "Men > Accessories > Hats & Caps > Baseball Caps", "adjustable strap, cotton fabric, breathable mesh, curved brim, machine wash, sun protection", "color, style", 8, 35),
    _t("fashion", "hoodie sweatshirt", "Men > Clothing > Fashion Hoodies & Sweatshirts", "fleece lining, kangaroo pocket, machine wash, drawstring hood, relaxed fit, soft fabric", "color, size", 18, 65),
    _t("fashion", "sandals", "Women > Shoes > Sandals > Flat Sandals", "open toe, ankle strap, rubber sole, arch support, memory foam, non slip, lightweight design", "color, size", 15, 70),
    # ------------------------------------------------------------------ furniture / home
    _t("furniture", "office chair", "Furniture > Home Office Furniture > Chairs", "lumbar support, adjustable height, easy assemble, breathable mesh, heavy duty, swivel base, padded armrests", "color, style", 60, 350),
    _t("furniture", "bookshelf", "Furniture > Living Room Furniture > Bookcases", "easy assemble, solid wood, storage space, living room, heavy duty, engineered wood, open shelves", "color, size", 40, 250),
    _t("furniture", "coffee table", "Furniture > Living Room Furniture > Tables", "easy assemble, solid wood, storage space, living room, tempered glass, metal frame, mid century", "color, style", 50, 300),
    _t("furniture", "bed sheet set", "Bedding > Sheets & Pillowcases > Sheet & Pillowcase Sets", "deep pocket, machine wash, egyptian cotton, wrinkle free, fade resistant, cooling fabric, soft microfiber", "color, size", 20, 120),
    _t("furniture", "throw pillow cover", "Home Decor > Decorative Pillows > Throw Pillow Covers", "hidden zipper, machine wash, living room, double sided, soft velvet, faux linen", "color, size, count", 8, 35),
    _t("furniture", "table lamp", "Lighting > Lamps > Table Lamps", "living room, usb port, dimmable light, energy efficient, bedside table, linen shade, touch control", "color, style", 18, 90),
    _t("furniture", "shower curtain", "Bath > Bathroom Accessories > Shower Curtains", "machine wash, water repellent, mildew resistant, heavy duty, weighted hem, rust proof hooks", "color, size", 10, 40),
    _t("furniture", "area rug", "Home Decor > Rugs > Area Rugs", "living room, non slip, machine wash, stain resistant, easy clean, low pile, pet friendly", "color, size", 25, 250),
    _t("furniture", "blackout curtains", "Home Decor > Window Treatments > Curtains", "thermal insulated, noise reducing, living room, machine wash, grommet top, energy saving", "color, size, count", 15, 80),
    _t("furniture", "storage ottoman", "Furniture > Living Room Furniture > Ottomans", "storage space, easy assemble, faux leather, living room, foldable design, heavy duty", "color, size", 25, 150),
    _t("furniture", "wall clock", "Home Decor > Clocks > Wall Clocks", "silent movement, battery operated, living room, easy read, modern design, glass cover", "color, size", 12, 60),
    _t("furniture", "bath towel set", "Bath > Towels > Bath Towels", "highly absorbent, machine wash, quick dry, soft cotton, fade resistant, hotel quality", "color, count", 15, 70),
    # ------------------------------------------------------------------ electronics
    _t("electronics", "wireless earbuds", "Headphones > Earbud Headphones", "noise cancelling, bluetooth connectivity, long battery life, water resistant, charging case, hands free", "color", 15, 200),
    _t("electronics", "phone charger", "Cell Phones & Accessories > Chargers > Wall Chargers", "fast charging, usb c, compact design, overheat protection, dual port, travel friendly", "color, count", 8, 45),
    _t("electronics", "bluetooth speaker", "Portable Audio & Video > Portable Speakers", "water resistant, long battery life, bluetooth connectivity, deep bass, hands free, built in microphone", "color", 20, 180),
    _t("electronics", "hdmi cable", "Television & Video > Accessories > Cables > HDMI Cables", "high speed, gold plated, 4k resolution, ethernet support, braided cord, high definition", "size, count", 5, 30),
    _t("electronics", "wireless mouse", "Computers & Accessories > Mice", "ergonomic design, silent click, long battery life, usb receiver, plug and play, adjustable dpi", "color", 8, 60),
    _t("electronics", "mechanical keyboard", "Computers & Accessories > Keyboards", "rgb backlight, usb c, hot swappable, anti ghosting, compact layout, wireless connectivity", "color, style", 30, 180),
    _t("electronics", "usb flash drive", "Computers & Accessories > Data Storage > USB Flash Drives", "high speed, usb 3.0, metal casing, key ring, plug and play, compact design", "capacity, count", 6, 50),
    _t("electronics", "tablet case", "Computers & Accessories > Tablet Accessories > Cases", "auto sleep, shockproof design, kickstand stand, pencil holder, lightweight design, full protection", "color, style", 10, 45),
    _t("electronics", "smart watch", "Wearable Technology > Smartwatches", "heart rate, sleep tracking, water resistant, long battery life, fitness tracker, bluetooth connectivity", "color, style", 30, 300),
    _t("electronics", "security camera", "Camera & Photo > Surveillance Cameras", "night vision, motion detection, two way audio, high definition, easy install, cloud storage", "count, style", 25, 200),
    _t("electronics", "power bank", "Cell Phones & Accessories > Portable Power Banks", "fast charging, usb c, compact design, led display, high capacity, travel friendly", "color, capacity", 15, 80),
    _t("electronics", "screen protector", "Cell Phones & Accessories > Screen Protectors", "tempered glass, bubble free, easy install, case friendly, scratch resistant, high definition", "count, style", 5, 20),
)
# fmt: on

#: Option name -> pool of values (products offer a subset of each pool they use).
OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "color": (
        "black",
        "white",
        "grey",
        "navy blue",
        "red",
        "pink",
        "beige",
        "brown",
        "green",
        "light blue",
        "purple",
        "yellow",
        "gold",
        "silver",
        "ivory",
        "burgundy",
        "teal",
        "orange",
    ),
    "size": ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"),
    "count": (
        "pack of 1",
        "pack of 2",
        "pack of 3",
        "pack of 4",
        "pack of 6",
        "pack of 12",
        "6 count",
        "12 count",
        "24 count",
    ),
    "flavor": (
        "original",
        "sea salt",
        "vanilla",
        "mint",
        "caramel",
        "strawberry",
        "peanut butter",
        "lemon",
        "cherry",
        "honey",
        "cinnamon",
        "hazelnut",
        "mango",
        "chili lime",
    ),
    "scent": (
        "lavender",
        "unscented",
        "coconut",
        "eucalyptus",
        "rose",
        "citrus",
        "vanilla",
        "sandalwood",
        "fresh linen",
        "cucumber melon",
    ),
    "style": (
        "classic",
        "modern",
        "compact",
        "deluxe",
        "standard",
        "pro",
        "slim",
        "rustic",
        "minimalist",
        "vintage",
    ),
    "capacity": ("16gb", "32gb", "64gb", "128gb", "256gb", "512gb", "10000mah", "20000mah"),
}

#: Syllables that make brand names (two or three joined, capitalised).
BRAND_PARTS: tuple[str, ...] = (
    "nor",
    "vel",
    "ari",
    "zen",
    "lum",
    "kor",
    "tal",
    "mira",
    "sol",
    "bex",
    "qua",
    "ros",
    "ten",
    "vio",
    "dax",
    "eli",
    "fen",
    "gro",
    "hal",
    "iva",
    "jor",
    "kel",
    "lor",
    "mon",
    "nix",
    "ora",
    "pel",
    "rin",
    "sav",
    "tor",
    "ula",
    "vex",
    "wyn",
    "yar",
    "zel",
    "bri",
    "cal",
    "dor",
)

#: Bullet feature sentence templates ({attr} is an attribute, {type} the type name).
FEATURE_TEMPLATES: tuple[str, ...] = (
    "{attr_title}: our {type} is made to be {attr} without compromise.",
    "Designed for everyday use with {attr} you can count on.",
    "{attr_title} - every {type} is checked for quality before it ships.",
    "Loved by customers for its {attr} and great value.",
    "What you get: one {type} backed by our 30 day satisfaction promise.",
    "Easy to use and easy to love: {attr}, ready when you are.",
)
