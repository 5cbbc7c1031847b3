"""Reconciliation of stored images with orders (RIS-3.8, FLOW-1/2, PACS-6, IHE PIR).

``reconciler`` is the node component: after the index writer commits, it looks at the new
instances, matches each new study to an order (through ``mekong.shared.ris.reconcile``) and
rewrites instances (``rewrite``) so they carry the order's demographics, with the originals
in Original Attributes Sequence. It also carries out the study-level requests of PIR (ADT^A08
/ A40) and of manual links. ``facts`` reads what a study says about its order.
"""
