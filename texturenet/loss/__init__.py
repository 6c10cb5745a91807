"""The perceptual loss (Ulyanov et al. 2016, Sec. 3.2): the frozen VGG loss network and the loss terms."""
