//! The product catalog the sandbox sells: brands, models, variants and USD base prices.
//! Names embed brands the way real listings do — cleanly ("Anker PowerCore 10000 Black")
//! and messily (lower case, promo tags, aliases, "compatible with" listings, no brand), so
//! brand parsing downstream has real work to do. The true brand of every product is served
//! in product detail (`brand.name`, empty when the seller set none).

/// One product line: brand, category, models with base USD price (cents), variant axis.
pub struct Template {
    /// Canonical brand name ("" for unbranded goods).
    pub brand: &'static str,
    /// Category shown in product detail.
    pub category: &'static str,
    /// Models and their USD base price in cents.
    pub models: &'static [(&'static str, i64)],
    /// Variant values (colour, size, capacity); one SKU per value used.
    pub variants: &'static [&'static str],
}

const COLORS: &[&str] = &["Black", "White", "Blue", "Pink", "Green"];
const SIZES: &[&str] = &["S", "M", "L", "XL"];
const VOLUMES: &[&str] = &["30ml", "50ml", "100ml"];
const NONE: &[&str] = &["Default"];

/// All templates. Order matters: it is part of the seed's determinism.
pub const TEMPLATES: &[Template] = &[
    Template {
        brand: "Anker",
        category: "Phones & Electronics",
        models: &[
            ("PowerCore 10000", 2599),
            ("PowerCore 20000", 3999),
            ("Nano Charger 20W", 1999),
            ("Soundcore Life Q30", 7999),
        ],
        variants: COLORS,
    },
    Template {
        brand: "Samsung",
        category: "Phones & Electronics",
        models: &[
            ("Galaxy Buds2 Pro", 14999),
            ("25W Super Fast Charger", 1999),
            ("Galaxy Watch6 40mm", 24999),
        ],
        variants: COLORS,
    },
    Template {
        brand: "Apple",
        category: "Phones & Electronics",
        models: &[
            ("AirPods Pro (2nd generation)", 24900),
            ("20W USB-C Power Adapter", 1900),
        ],
        variants: NONE,
    },
    Template {
        brand: "Xiaomi",
        category: "Phones & Electronics",
        models: &[("Redmi Buds 4 Active", 2499), ("Smart Band 8", 3999)],
        variants: COLORS,
    },
    Template {
        brand: "JBL",
        category: "Phones & Electronics",
        models: &[
            ("Tune 520BT Headphones", 4999),
            ("Go 3 Portable Speaker", 3999),
        ],
        variants: COLORS,
    },
    Template {
        brand: "Logitech",
        category: "Computers & Office",
        models: &[
            ("MX Master 3S Mouse", 9999),
            ("G305 Wireless Gaming Mouse", 3999),
        ],
        variants: COLORS,
    },
    Template {
        brand: "L'Oréal Paris",
        category: "Beauty & Personal Care",
        models: &[
            ("Revitalift 1.5% Hyaluronic Acid Serum", 2499),
            ("Infallible 24H Fresh Wear Foundation", 1599),
        ],
        variants: VOLUMES,
    },
    Template {
        brand: "Maybelline",
        category: "Beauty & Personal Care",
        models: &[
            ("Sky High Mascara", 1199),
            ("Fit Me Matte + Poreless Foundation", 999),
        ],
        variants: NONE,
    },
    Template {
        brand: "CeraVe",
        category: "Beauty & Personal Care",
        models: &[
            ("Hydrating Facial Cleanser", 1599),
            ("Moisturizing Cream", 1899),
        ],
        variants: VOLUMES,
    },
    Template {
        brand: "The Ordinary",
        category: "Beauty & Personal Care",
        models: &[
            ("Niacinamide 10% + Zinc 1%", 690),
            ("Hyaluronic Acid 2% + B5", 890),
        ],
        variants: VOLUMES,
    },
    Template {
        brand: "COSRX",
        category: "Beauty & Personal Care",
        models: &[("Advanced Snail 96 Mucin Power Essence", 2500)],
        variants: VOLUMES,
    },
    Template {
        brand: "Skintific",
        category: "Beauty & Personal Care",
        models: &[
            ("5X Ceramide Barrier Moisture Gel", 1290),
            ("Mugwort Anti Pores Clay Mask", 990),
        ],
        variants: NONE,
    },
    Template {
        brand: "Wardah",
        category: "Beauty & Personal Care",
        models: &[("Lightening Serum Ampoule", 690)],
        variants: VOLUMES,
    },
    Template {
        brand: "Nike",
        category: "Womenswear & Underwear",
        models: &[
            ("Dri-FIT Running Tee", 3000),
            ("Everyday Cushioned Socks 3-Pack", 2200),
        ],
        variants: SIZES,
    },
    Template {
        brand: "Adidas",
        category: "Menswear & Underwear",
        models: &[
            ("Essentials Fleece Hoodie", 5500),
            ("Ultraboost Light Running Shoes", 18000),
        ],
        variants: SIZES,
    },
    Template {
        brand: "Stanley",
        category: "Home Supplies",
        models: &[("Quencher H2.0 FlowState Tumbler 40oz", 4500)],
        variants: COLORS,
    },
    Template {
        brand: "Owala",
        category: "Home Supplies",
        models: &[("FreeSip Insulated Water Bottle 24oz", 2799)],
        variants: COLORS,
    },
    Template {
        brand: "",
        category: "Phones & Electronics",
        models: &[
            ("Shockproof Clear Phone Case", 899),
            ("USB-C to USB-C Cable 1m", 699),
            ("Magnetic Phone Holder for Car", 1299),
        ],
        variants: COLORS,
    },
    Template {
        brand: "",
        category: "Home Supplies",
        models: &[
            ("LED Strip Lights 5m RGB", 1599),
            ("Silicone Kitchen Utensil Set 12pcs", 2199),
        ],
        variants: NONE,
    },
];

/// Ways a seller writes a listing title. Index chosen per product from the seed.
/// `{b}` is the brand, `{m}` the model, `{v}` the first variant.
pub const TITLE_STYLES: &[&str] = &[
    "{b} {m} {v}",
    "{b} {m} {v}",
    "{b} {m}",
    "{b} {m} - {v}",
    "【Hot Sale】{b} {m}",
    "[READY STOCK] {lb} {m} {v}",
    "2025 NEW {ub} {m}",
    "Original {b} {m} ({v})",
    "{m} by {b}",
];

/// Alternative spellings sellers use (`{alias}` in a title instead of the brand).
pub const ALIASES: &[(&str, &[&str])] = &[
    ("L'Oréal Paris", &["LOreal Paris", "L'Oreal", "Loreal"]),
    ("Samsung", &["SAMSUNG", "samsung"]),
    ("The Ordinary", &["THE ORDINARY", "Ordinary"]),
    ("Xiaomi", &["Mi", "XIAOMI"]),
];

/// Unbranded listings that mention a brand they are not ("for Apple", "compatible with").
pub const LOOKALIKE_STYLES: &[&str] = &[
    "Compatible with Apple iPhone 15 {m}",
    "{m} for Samsung Galaxy S24",
    "{m} {v}",
];
