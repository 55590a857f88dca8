"""A realistic small knowledge base of an online fashion shop, shared by the AI tests."""

from __future__ import annotations

from ai.knowledge import KnowledgeBase, KnowledgeEntry

SHOP_ENTRIES: tuple[KnowledgeEntry, ...] = (
    KnowledgeEntry(
        id="shipping-time", question="How long does shipping take?",
        answer="Orders leave our warehouse within 1 business day; standard delivery takes 3-5 business days.",
        keywords=("delivery time", "arrive", "dispatch"), tags=("shipping",)),
    KnowledgeEntry(
        id="shipping-cost", question="How much does shipping cost?",
        answer="Shipping is free on orders over 50 EUR; below that it costs 4.90 EUR.",
        keywords=("delivery fee", "postage", "free shipping"), tags=("shipping",)),
    KnowledgeEntry(
        id="international", question="Do you ship internationally?",
        answer="We ship to every EU country, the United Kingdom and Switzerland.",
        keywords=("abroad", "countries", "worldwide", "overseas"), tags=("shipping",)),
    KnowledgeEntry(
        id="returns", question="How do I return an item?",
        answer="You can return any item within 30 days: start a return on your account page and use the prepaid label.",
        keywords=("send back", "return policy"), tags=("returns",)),
    KnowledgeEntry(
        id="refunds", question="When will I get my refund?",
        answer="Refunds go back to your original payment method within 5 business days after your return arrives.",
        keywords=("money back", "reimbursement"), tags=("returns",)),
    KnowledgeEntry(
        id="exchange", question="Can I exchange an item for a different size?",
        answer="Yes, exchanges are free: choose 'exchange' when you start a return and pick the new size.",
        keywords=("swap",), tags=("returns",)),
    KnowledgeEntry(
        id="opening-hours", question="What are your opening hours?",
        answer="Customer service is open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00.",
        keywords=("open", "closed", "weekend", "saturday", "sunday"), tags=("contact",)),
    KnowledgeEntry(
        id="payment-methods", question="Which payment methods do you accept?",
        answer="We accept Visa, Mastercard, PayPal, Apple Pay and bank transfer.",
        keywords=("pay", "credit card", "paypal"), tags=("payment",)),
    KnowledgeEntry(
        id="order-tracking", question="How can I track my order?",
        answer="You get a tracking link by e-mail and WhatsApp as soon as your parcel ships.",
        keywords=("where is my order", "tracking number", "parcel", "package"), tags=("orders",)),
    KnowledgeEntry(
        id="cancel-order", question="Can I cancel my order?",
        answer="You can cancel within 2 hours of ordering on your account page; after that, just return the parcel.",
        keywords=("cancellation", "changed my mind"), tags=("orders",)),
    KnowledgeEntry(
        id="size-guide", question="How do I find my size?",
        answer="Our clothes run true to size; every product page has a size chart with measurements in cm.",
        keywords=("size chart", "fit", "measurements"), tags=("products",)),
    KnowledgeEntry(
        id="restock", question="When will a sold out item be back in stock?",
        answer="Sold-out items are usually restocked within 2-3 weeks; tap 'notify me' on the product page.",
        keywords=("restock", "availability"), tags=("products",)),
    KnowledgeEntry(
        id="discount-code", question="How do I use a discount code?",
        answer="Enter the code in the 'Discount' field at checkout; one code per order.",
        keywords=("coupon", "promo code", "voucher"), tags=("payment",)),
    KnowledgeEntry(
        id="gift-cards", question="Do you sell gift cards?",
        answer="Yes: digital gift cards from 10 to 200 EUR, valid for 2 years.",
        keywords=("present",), tags=("payment",)),
    KnowledgeEntry(
        id="store", question="Where is your shop located?",
        answer="Our flagship store is at Kastanienallee 12, Berlin.",
        keywords=("store address", "visit", "physical store"), tags=("contact",)),
    KnowledgeEntry(
        id="damaged", question="My item arrived damaged, what should I do?",
        answer="Sorry about that! Send us a photo here and we ship a replacement free of charge.",
        keywords=("broken", "defective", "faulty", "wrong item"), tags=("orders",)),
)


def shop_kb(*, tenant_id: str = "shop", version: str | None = None) -> KnowledgeBase:
    """The shop's knowledge base (version: the content fingerprint unless given)."""
    return KnowledgeBase(SHOP_ENTRIES, tenant_id=tenant_id, version=version)
