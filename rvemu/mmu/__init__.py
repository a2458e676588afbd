"""Virtual memory: Sv39/Sv48 page walks and the software TLB in front of them."""
