"""The demo catalog: a small shop selling what AI-generated videos feature.

Deterministic (no randomness) so docs, tests and screenshots agree. 24 products,
72+ variants, physical goods with stock and digital goods without.
"""

from __future__ import annotations

from feeds.schemas import ProductRecord, VariantRecord

BASE_URL = "https://shop.example.com"

# (product id, title, brand, base price in cents, digital?, options axis, option values)
_PRODUCTS: list[tuple[str, str, str, int, bool, str, list[str]]] = [
    ("denim-jacket", "Vintage Denim Jacket", "Reel Threads", 8900, False, "Size", ["S", "M", "L"]),
    ("linen-shirt", "Linen Summer Shirt", "Reel Threads", 4900, False, "Size", ["S", "M", "L"]),
    ("trail-sneaker", "Trail Runner Sneaker", "Stride", 11900, False, "Size", ["9", "10", "11"]),
    ("canvas-tote", "Canvas Market Tote", "Carry Co", 2900, False, "Color",
     ["Natural", "Black", "Olive"]),
    ("ceramic-mug", "Hand-thrown Ceramic Mug", "Kiln & Co", 2400, False, "Glaze",
     ["Sand", "Ocean", "Charcoal"]),
    ("pour-over", "Glass Pour-Over Set", "Kiln & Co", 3900, False, "Size",
     ["1-cup", "2-cup", "4-cup"]),
    ("desk-lamp", "Arc Desk Lamp", "Lumen", 7900, False, "Finish", ["Brass", "Black", "White"]),
    ("wool-beanie", "Merino Wool Beanie", "Reel Threads", 2900, False, "Color",
     ["Rust", "Navy", "Grey"]),
    ("yoga-mat", "Cork Yoga Mat", "Stride", 6900, False, "Thickness", ["4mm", "6mm", "8mm"]),
    ("water-bottle", "Insulated Water Bottle", "Carry Co", 3400, False, "Size",
     ["500ml", "750ml", "1L"]),
    ("sunglasses", "Polarized Sunglasses", "Lumen", 12900, False, "Frame",
     ["Tortoise", "Black", "Clear"]),
    ("phone-case", "Recycled Phone Case", "Carry Co", 3200, False, "Model",
     ["Model A", "Model B", "Model C"]),
    ("scented-candle", "Soy Scented Candle", "Kiln & Co", 2800, False, "Scent",
     ["Cedar", "Fig", "Sea Salt"]),
    ("headphones", "Wireless Headphones", "Lumen", 17900, False, "Color",
     ["Black", "Silver", "Sage"]),
    ("backpack", "Weekender Backpack", "Carry Co", 9900, False, "Color",
     ["Black", "Tan", "Forest"]),
    ("chef-knife", "Damascus Chef Knife", "Kiln & Co", 14900, False, "Length",
     ["6in", "8in", "10in"]),
    ("lut-pack", "Cinematic LUT Pack", "Reel Studio", 2900, True, "License",
     ["Personal", "Commercial", "Team"]),
    ("video-course", "Shoot Better Shorts (Video Course)", "Reel Studio", 7900, True,
     "Edition", ["Standard", "Deluxe", "Mentorship"]),
    ("preset-bundle", "Color Preset Bundle", "Reel Studio", 1900, True, "License",
     ["Personal", "Commercial", "Team"]),
    ("music-license", "Royalty-free Music License", "Reel Studio", 4900, True, "Tier",
     ["Starter", "Creator", "Studio"]),
    ("ebook", "The Short-Form Playbook (eBook)", "Reel Studio", 1500, True, "Format",
     ["PDF", "EPUB", "Bundle"]),
    ("gift-card", "Digital Gift Card", "ReelCart Demo Store", 2500, True, "Amount",
     ["$25", "$50", "$100"]),
    ("sticker-pack", "Holographic Sticker Pack", "Carry Co", 900, False, "Theme",
     ["Space", "Ocean", "Retro"]),
    ("poster", "Limited Film Poster", "Reel Studio", 3500, False, "Size",
     ["A3", "A2", "A1"]),
]


def demo_catalog() -> list[ProductRecord]:
    records = []
    for index, (pid, title, brand, price, digital, axis, values) in enumerate(_PRODUCTS):
        variants = []
        for step, value in enumerate(values):
            vid = f"{pid}-{value.lower().replace(' ', '-').replace('$', '')}"
            amount = price + step * (price // 10 if digital or axis in ("Size", "Length",
                                                                        "Amount") else 0)
            if axis == "Amount":
                amount = int(value.strip("$")) * 100
            # Stock varies so the demo shows low stock and an out-of-stock variant.
            stock = None if digital else (0 if (index + step) % 17 == 0 else 3 + (
                index * 7 + step * 5) % 40)
            variants.append(VariantRecord(
                id=vid, title=f"{title} — {value}", price_amount=amount, currency="usd",
                description=f"{title}, {axis.lower()} {value}.", sku=vid.upper(),
                url=f"{BASE_URL}/products/{pid}?variant={vid}",
                image_url=f"{BASE_URL}/images/{pid}/{step + 1}.jpg",
                availability="out_of_stock" if stock == 0 else "in_stock", stock=stock,
                requires_shipping=not digital,
                variant_options=[{"name": axis, "value": value}],
                categories=["Digital Goods" if digital else "Apparel & Home"],
            ))
        records.append(ProductRecord(
            id=pid, title=title, variants=variants, brand=brand,
            description=f"{title} by {brand}, as seen in our AI-generated shorts.",
            url=f"{BASE_URL}/products/{pid}",
            media=[{"type": "image", "url": f"{BASE_URL}/images/{pid}/1.jpg",
                    "alt_text": title}],
        ))
    return records
