"""(filled by later layers)"""
